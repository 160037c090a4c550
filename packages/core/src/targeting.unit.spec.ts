import { describe, expect, it } from 'vitest';
import { globMatch, listMatch, matchTarget, pcreMatch, resolveTarget, splitListTarget } from './targeting.js';

describe('glob targets (fnmatch, case-sensitive)', () => {
  it.each([
    ['192.168.153.141', '*', true],
    ['192.168.153.141', '192.168.153.14*', true],
    ['192.168.153.136', '192.168.153.14*', false],
    ['web1', 'web?', true],
    ['web10', 'web?', false],
    ['web1', 'web[12]', true],
    ['web3', 'web[!12]', true],
    ['web1', 'web[!12]', false],
    ['Web1', 'web*', false],
    ['a/b', 'a*', true],
    ['web.1', 'web.1', true],
    ['webx1', 'web.1', false],
    ['a[b', 'a[b', true],
    ['a+b', 'a+b', true],
    ['line\nbreak', 'line*', true],
  ])('%s against %s → %s', (id, pattern, expected) => {
    expect(globMatch(id, pattern)).toBe(expected);
  });
});

describe('pcre targets (anchored at the start only)', () => {
  it('matches a prefix as re.match does', () => {
    expect(pcreMatch('webserver1', 'web')).toBe(true);
    expect(pcreMatch('myweb', 'web')).toBe(false);
    expect(pcreMatch('web1', 'web\\d$')).toBe(true);
    expect(pcreMatch('web1', '(')).toBe(false);
  });
});

describe('list targets', () => {
  it('arrays are exact membership; strings behave like a comma list', () => {
    expect(listMatch('a', ['a', 'b'])).toBe(true);
    expect(listMatch('a', ['ab'])).toBe(false);
    expect(listMatch('b', 'a,b,c')).toBe(true);
    expect(listMatch('a', 'a,b')).toBe(true);
    expect(listMatch('c', 'a,b,c')).toBe(true);
    expect(listMatch('a', 'a')).toBe(true);
    expect(listMatch('a', 'ab,c')).toBe(false);
  });
  it('splits like the CLI: commas (spaces removed) or whitespace', () => {
    expect(splitListTarget('a, b,,c')).toEqual(['a', 'b', 'c']);
    expect(splitListTarget('a b  c')).toEqual(['a', 'b', 'c']);
  });
});

describe('resolveTarget', () => {
  const known = ['192.168.153.141', '192.168.153.142', '192.168.153.136'];
  it('predicts minions and the missing names of a list', () => {
    expect(resolveTarget(known, '192.168.153.14*', 'glob')).toEqual({ minions: ['192.168.153.141', '192.168.153.142'], missing: [] });
    expect(resolveTarget(known, ['192.168.153.141', 'ghost'], 'list')).toEqual({ minions: ['192.168.153.141'], missing: ['ghost'] });
    expect(resolveTarget(known, 'nomatch*', 'glob')).toEqual({ minions: [], missing: [] });
  });
  it('refuses target types it cannot evaluate', () => {
    expect(() => matchTarget('a', 'os:Debian', 'grain')).toThrow(/not supported/);
  });
});
