import { describe, expect, it } from 'vitest';
import { renderReturn, resolveOutputter } from './index.js';

describe('resolveOutputter', () => {
  it('maps text to txt and empty or unknown names to nested', () => {
    expect(resolveOutputter('text')).toBe('txt');
    expect(resolveOutputter('json')).toBe('json');
    expect(resolveOutputter('no_return')).toBe('no_return');
    expect(resolveOutputter('')).toBe('nested');
    expect(resolveOutputter(undefined)).toBe('nested');
    expect(resolveOutputter('highstate')).toBe('nested');
  });
});

describe('renderReturn', () => {
  const ret = { m1: true };

  it('dispatches to each outputter', () => {
    expect(renderReturn('nested', ret, { color: false })).toBe('m1:\n    True');
    expect(renderReturn('json', ret, { color: false })).toBe('{\n    "m1": true\n}');
    expect(renderReturn('json', ret, { color: false, outIndent: -1 })).toBe('{"m1": true}');
    expect(renderReturn('yaml', ret, { color: false })).toBe('m1: true');
    expect(renderReturn('text', ret, { color: false })).toBe('m1: True');
    expect(renderReturn('raw', ret, { color: false })).toBe("{'m1': True}");
    expect(renderReturn('quiet', ret, { color: false })).toBe('');
    expect(renderReturn('no_return', { m1: 'Minion did not return. [Not connected]' }, { color: false })).toBe(
      'm1:\n    Minion did not return. [Not connected]',
    );
  });

  it('falls back to nested for unknown names and passes retcode and indent', () => {
    expect(renderReturn('bogus', ret, { color: true, retcode: 1 })).toBe('\x1b[0;31mm1\x1b[0;0m:\n    \x1b[0;1;33mTrue\x1b[0;0m');
    expect(renderReturn('nested', ret, { color: false, indent: 4 })).toBe('    ----------\n    m1:\n        True');
  });

  it('returns an empty string when there is nothing to print', () => {
    expect(renderReturn('nested', { m1: '' }, { color: false })).toBe('m1:');
    expect(renderReturn('nested', {}, { color: false })).toBe('');
  });
});
