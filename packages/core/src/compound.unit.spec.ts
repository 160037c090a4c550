import { describe, expect, it } from 'vitest';
import { compoundMatch, parseTargetWord, type TargetWord } from './compound.js';

/** Terms are ids that are "true"; every other term is false. */
function evalWith(trueTerms: string[]) {
  return (tgt: string | string[]) =>
    compoundMatch(tgt, (t: TargetWord) => trueTerms.includes((t.engine ? `${t.engine}${t.delimiter ?? ''}@` : '') + t.pattern));
}

describe('parseTargetWord (Salt’s TARGET_REX)', () => {
  it.each([
    ['web1', { pattern: 'web1' }],
    ['G@os:Debian', { engine: 'G', pattern: 'os:Debian' }],
    ['G%@planets%merc*', { engine: 'G', delimiter: '%', pattern: 'planets%merc*' }],
    ['P|@os|deb.*', { engine: 'P', delimiter: '|', pattern: 'os|deb.*' }],
    ['L@a,b', { engine: 'L', pattern: 'a,b' }],
    ['L%@a', { pattern: 'L%@a' }],
    ['E@web\\d+', { engine: 'E', pattern: 'web\\d+' }],
    ['S@10.0.0.0/8', { engine: 'S', pattern: '10.0.0.0/8' }],
    ['N@group1', { engine: 'N', pattern: 'group1' }],
    ['X@foo', { pattern: 'X@foo' }],
    ['L@', { pattern: 'L@' }],
  ])('%s', (word, expected) => {
    expect(parseTargetWord(word)).toEqual(expected);
  });
});

describe('compoundMatch: Python eval of the True/False string Salt builds', () => {
  const m = evalWith(['a', 'b', 'G@k:v']);
  it('follows Python precedence: not > and > or', () => {
    expect(m('a and b')).toBe(true);
    expect(m('a and c')).toBe(false);
    expect(m('c or a')).toBe(true);
    expect(m('c or a and c')).toBe(false);
    expect(m('a or c and c')).toBe(true);
    expect(m('( a or c ) and c')).toBe(false);
    expect(m('not c and a')).toBe(true);
    expect(m('not ( a or c )')).toBe(false);
    expect(m('G@k:v and not c')).toBe(true);
  });
  it('reads `not` right after a term as `and not`', () => {
    expect(m('a not c')).toBe(true);
    expect(m('a not b')).toBe(false);
    expect(m('( a ) not c')).toBe(true);
  });
  it('accepts a list of words', () => {
    expect(m(['(', 'a', 'or', 'c', ')', 'and', 'b'])).toBe(true);
  });
  it('an invalid expression matches nothing', () => {
    expect(m('and a')).toBe(false);
    expect(m('or a')).toBe(false);
    expect(m('( and a )')).toBe(false);
    expect(m('a b')).toBe(false);
    expect(m('a and')).toBe(false);
    expect(m('( a')).toBe(false);
    expect(m('a )')).toBe(false);
    expect(m('a ( b )')).toBe(false); // a call of a bool in Python
    expect(m('not not a')).toBe(false); // Salt inserts `and` between the two
    expect(m('')).toBe(false);
    expect(m('( )')).toBe(false);
  });
  it('evaluates every term in order', () => {
    const seen: string[] = [];
    compoundMatch('a or b and not c', (t) => (seen.push(t.pattern), true));
    expect(seen).toEqual(['a', 'b', 'c']);
  });
  it('tells a term whether it directly follows not', () => {
    const negated: boolean[] = [];
    compoundMatch('a and not L@x or not ( b )', (_t, n) => (negated.push(n), true));
    expect(negated).toEqual([false, true, false]);
  });
  it('expands N@ terms in place from the given nodegroups, and drops unknown ones', () => {
    const nodegroups = { g: 'c or a' };
    expect(compoundMatch('N@g and b', (t) => ['a', 'b'].includes(t.pattern), { nodegroups })).toBe(true);
    // Salt splices the words unwrapped: `c or a and c` is `c or (a and c)`.
    expect(compoundMatch('N@g and c', (t) => ['a', 'b'].includes(t.pattern), { nodegroups })).toBe(false);
    expect(compoundMatch('N@nope or a', (t) => t.pattern === 'a')).toBe(false); // leaves "or a"
  });
});
