import { describe, expect, it } from 'vitest';
import { compareCodePoints, pyRepr, pyRstrip, pySplitLines, renderRaw } from './raw.js';

describe('renderRaw', () => {
  it('prints Python str() of the structure', () => {
    expect(renderRaw({ m1: true })).toBe("{'m1': True}");
    expect(renderRaw({ m1: [1, 'a', null, false, 1.5, 1e-5, [], {}] })).toBe("{'m1': [1, 'a', None, False, 1.5, 1e-05, [], {}]}");
    expect(renderRaw('top-level string')).toBe('top-level string');
  });

  it('quotes strings like Python repr', () => {
    const data = { s: "it's", d: 'say "hi"', b: 'both \' "', n: 'a\nb\\c', x: '\x00\x7f\xa0\xad é 😀\u2028' };
    expect(renderRaw(data)).toBe(
      `{'s': "it's", 'd': 'say "hi"', 'b': 'both \\' "', 'n': 'a\\nb\\\\c', 'x': '\\x00\\x7f\\xa0\\xad é 😀\\u2028'}`,
    );
    expect(pyRepr('\t\r')).toBe("'\\t\\r'");
  });
});

describe('Python helpers', () => {
  it('splits lines like str.splitlines()', () => {
    expect(pySplitLines('')).toEqual([]);
    expect(pySplitLines('\n')).toEqual(['']);
    expect(pySplitLines('a\r\nb\rc\vd\n\n')).toEqual(['a', 'b', 'c', 'd', '']);
  });

  it('right-strips Python whitespace', () => {
    expect(pyRstrip('a \t\n\x1f\u3000')).toBe('a');
    expect(pyRstrip(' a\n \n')).toBe(' a');
  });

  it('compares by code point', () => {
    expect(['😀', '\uffff', 'a', 'ab', 'B'].sort(compareCodePoints)).toEqual(['B', 'a', 'ab', '\uffff', '😀']);
  });
});
