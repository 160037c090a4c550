import { describe, expect, it } from 'vitest';
import { renderYaml } from './yaml.js';

describe('renderYaml', () => {
  it('uses block style', () => {
    expect(renderYaml({ m1: true })).toBe('m1: true');
  });

  it('matches PyYAML safe_dump for a saltutil.running return', () => {
    const data = {
      m1: [{ jid: '20160503150049487736', fun: 'test.sleep', arg: [30], pid: 9601, ret: '', tgt: 'm1', tgt_type: 'glob', user: 'root' }],
    };
    expect(renderYaml(data)).toBe(
      [
        'm1:',
        '- arg:',
        '  - 30',
        '  fun: test.sleep',
        "  jid: '20160503150049487736'",
        '  pid: 9601',
        "  ret: ''",
        '  tgt: m1',
        '  tgt_type: glob',
        '  user: root',
      ].join('\n'),
    );
  });

  it('quotes and formats scalars as PyYAML does', () => {
    const data = {
      m1: {
        answers: ['yes', 'no', 'on'],
        date: '2024-01-01',
        num: '123',
        float: 1e-5,
        half: 0.5,
        out: 'line one\nline two',
        tab: 'a\tb',
        esc: '\x1b[0m',
        empty: '',
        none: null,
        é: 'ünï',
        quote: "it's",
      },
    };
    expect(renderYaml(data)).toBe(
      [
        'm1:',
        '  answers:',
        "  - 'yes'",
        "  - 'no'",
        "  - 'on'",
        "  date: '2024-01-01'",
        "  empty: ''",
        '  esc: "\\e[0m"',
        '  float: 1.0e-05',
        '  half: 0.5',
        '  none: null',
        "  num: '123'",
        "  out: 'line one",
        '',
        "    line two'",
        "  quote: it's",
        '  tab: "a\\tb"',
        '  é: ünï',
      ].join('\n'),
    );
  });
  it('writes flow style for a negative --out-indent', () => {
    expect(renderYaml({ m1: { b: 'x y', a: [1, { c: null }] } }, -1)).toBe('{m1: {a: [1, {c: null}], b: x y}}');
    expect(renderYaml({ m1: true }, 2)).toBe('m1: true');
  });
});
