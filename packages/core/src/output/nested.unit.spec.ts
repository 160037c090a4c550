import { describe, expect, it } from 'vitest';
import { renderNested } from './nested.js';

const plain = { color: false };

describe('renderNested', () => {
  it('renders the saltutil.running example from the Salt reference', () => {
    const data = {
      m1: [
        {
          user: 'root',
          tgt_type: 'glob',
          tgt: 'm1',
          ret: '',
          pid: 9601,
          jid: '20160503150049487736',
          fun: 'test.sleep',
          arg: [30],
        },
      ],
    };
    expect(renderNested(data, plain)).toBe(
      [
        'm1:',
        '    |_',
        '      ----------',
        '      arg:',
        '          - 30',
        '      fun:',
        '          test.sleep',
        '      jid:',
        '          20160503150049487736',
        '      pid:',
        '          9601',
        '      ret:',
        '      tgt:',
        '          m1',
        '      tgt_type:',
        '          glob',
        '      user:',
        '          root',
      ].join('\n'),
    );
  });

  it('renders the saltutil.find_job proc record from the transcript', () => {
    const data = {
      '192.168.153.141': {
        fun: 'cmd.run',
        arg: ['sleep 100'],
        jid: '20261125175505734857',
        pid: 12105,
        ret: '',
        tgt: ['192.168.153.141', '192.168.153.142', '192.168.153.136'],
        tgt_type: 'list',
        user: 'root',
      },
    };
    expect(renderNested(data, plain)).toBe(
      [
        '192.168.153.141:',
        '    ----------',
        '    arg:',
        '        - sleep 100',
        '    fun:',
        '        cmd.run',
        '    jid:',
        '        20261125175505734857',
        '    pid:',
        '        12105',
        '    ret:',
        '    tgt:',
        '        - 192.168.153.141',
        '        - 192.168.153.142',
        '        - 192.168.153.136',
        '    tgt_type:',
        '        list',
        '    user:',
        '        root',
      ].join('\n'),
    );
  });

  it('renders test.ping, test.echo "" and an empty find_job reply', () => {
    expect(renderNested({ id: true }, plain)).toBe('id:\n    True');
    expect(renderNested({ id: '' }, plain)).toBe('id:');
    expect(renderNested({ id: {} }, plain)).toBe('id:\n    ----------');
    expect(renderNested({ id: [] }, plain)).toBe('id:');
    expect(renderNested({}, plain)).toBe('');
  });

  it('renders scalars, nested lists and multi-line strings like Salt', () => {
    const data = { id: [[1, [2]], 'a', null, false, 1.5, 0.1, 1e-5, [], {}, 'one\r\ntwo\n', { k: 'v' }] };
    expect(renderNested(data, plain)).toBe(
      [
        'id:',
        '    |_',
        '      - 1',
        '      |_',
        '        - 2',
        '    - a',
        '    - None',
        '    - False',
        '    - 1.5',
        '    - 0.1',
        '    - 1e-05',
        '    |_',
        '    |_',
        '      ----------',
        '    - one',
        '      two',
        '    |_',
        '      ----------',
        '      k:',
        '          v',
      ].join('\n'),
    );
    expect(renderNested({ id: 'line 1\n\nline 3\n' }, plain)).toBe('id:\n    line 1\n    \n    line 3');
    expect(renderNested({ id: 2 ** 60 }, plain)).toBe('id:\n    1152921504606846976');
    expect(renderNested({ id: 12345678901234567890n }, plain)).toBe('id:\n    12345678901234567890');
  });

  it('sorts keys by code point', () => {
    const data = { id: { b: 1, B: 2, _: 3, a: 4, '10': 5, '9': 6, é: 7, '😀': 8, '\uffff': 9 } };
    expect(renderNested(data, plain)).toBe(
      'id:\n    ----------\n' +
        ['10', '9', 'B', '_', 'a', 'b', 'é', '\uffff', '😀']
          .map((k) => `    ${k}:\n        ${(data.id as Record<string, number>)[k]}`)
          .join('\n'),
    );
  });

  it('shifts the tree by nested_indent, adding a top-level dashed line', () => {
    expect(renderNested({ id: 1 }, { color: false, indent: 2 })).toBe('  ----------\n  id:\n      1');
  });

  it('right-trims the whole text only', () => {
    expect(renderNested({ a: 'x  ', b: 'y  \n' }, plain)).toBe('a:\n    x  \nb:\n    y');
  });

  describe('colours', () => {
    it('paints a simple map', () => {
      expect(renderNested({ id: 'x' }, { color: true })).toBe('\x1b[0;36mid\x1b[0;0m:\n    \x1b[0;32mx\x1b[0;0m');
      expect(renderNested({ id: true }, { color: true, retcode: 0 })).toBe('\x1b[0;36mid\x1b[0;0m:\n    \x1b[0;1;33mTrue\x1b[0;0m');
    });

    it('turns keys red for a non-zero retcode, values keep their colour', () => {
      expect(renderNested({ id: 'x' }, { color: true, retcode: 1 })).toBe('\x1b[0;31mid\x1b[0;0m:\n    \x1b[0;32mx\x1b[0;0m');
    });

    it('paints dashes, list prefixes and |_', () => {
      const data = { id: { n: [1, { b: null }] } };
      expect(renderNested(data, { color: true })).toBe(
        [
          '\x1b[0;36mid\x1b[0;0m:',
          '    \x1b[0;36m----------\x1b[0;0m',
          '    \x1b[0;36mn\x1b[0;0m:',
          '        \x1b[0;1;33m- 1\x1b[0;0m',
          '        \x1b[0;32m|_\x1b[0;0m',
          '          \x1b[0;36m----------\x1b[0;0m',
          '          \x1b[0;36mb\x1b[0;0m:',
          '              \x1b[0;1;33mNone\x1b[0;0m',
        ].join('\n'),
      );
      expect(renderNested(data, { color: true, retcode: 2 })).toBe(
        [
          '\x1b[0;31mid\x1b[0;0m:',
          '    \x1b[0;31m----------\x1b[0;0m',
          '    \x1b[0;31mn\x1b[0;0m:',
          '        \x1b[0;1;33m- 1\x1b[0;0m',
          '        \x1b[0;31m|_\x1b[0;0m',
          '          \x1b[0;31m----------\x1b[0;0m',
          '          \x1b[0;31mb\x1b[0;0m:',
          '              \x1b[0;1;33mNone\x1b[0;0m',
        ].join('\n'),
      );
    });
  });
});
