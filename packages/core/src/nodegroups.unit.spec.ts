import { describe, expect, it } from 'vitest';
import { expandCompoundNodegroups } from './compound.js';
import { nodegroupComp } from './nodegroups.js';

// Salt's own cases (tests/unit/utils/test_minions.py `test_nodegroup_comp`).
const NODEGROUPS = {
  group1: 'L@host1,host2,host3',
  group2: ['G@foo:bar', 'or', 'web1*'],
  group3: ['N@group1', 'or', 'N@group2'],
  group4: ['host4', 'host5', 'host6'],
  group5: 'N@group4',
  group6: 'N@group3',
  group7: ['host1'],
};

const EXPECTED: Record<string, string[]> = {
  group1: ['L@host1,host2,host3'],
  group2: ['G@foo:bar', 'or', 'web1*'],
  group3: ['(', '(', 'L@host1,host2,host3', ')', 'or', '(', 'G@foo:bar', 'or', 'web1*', ')', ')'],
  group4: ['L@host4,host5,host6'],
  group5: ['(', 'L@host4,host5,host6', ')'],
  group6: ['(', '(', '(', 'L@host1,host2,host3', ')', 'or', '(', 'G@foo:bar', 'or', 'web1*', ')', ')', ')'],
  group7: ['L@host1'],
};

describe('nodegroupComp (Salt’s nodegroup_comp)', () => {
  it.each(Object.keys(NODEGROUPS))('%s expands as in Salt’s tests', (name) => {
    expect(nodegroupComp(name, NODEGROUPS)).toEqual(EXPECTED[name]);
  });

  it('splits a string definition on whitespace and keeps a definition with operators as it is', () => {
    const groups = { g: 'G@os:Debian and foo.domain.com', l: 'a.example b.example', star: 'web* db1' };
    expect(nodegroupComp('g', groups)).toEqual(['G@os:Debian', 'and', 'foo.domain.com']);
    expect(nodegroupComp('l', groups)).toEqual(['L@a.example,b.example']);
    expect(nodegroupComp('star', groups)).toEqual(['web*', 'db1']);
  });

  it('rewrites a list with regular-expression characters to E@', () => {
    expect(nodegroupComp('r', { r: ['web[0-9]', 'db(1|2)'] })).toEqual(['E@web[0-9],db(1|2)']);
    expect(nodegroupComp('q', { q: 'host? other' })).toEqual(['E@host?,other']);
  });

  it('expands nested groups recursively, each wrapped in parentheses unless rewritten to L@/E@', () => {
    const groups = { a: 'N@b and G@os:Debian', b: 'N@c or web1', c: ['x', 'y'] };
    expect(nodegroupComp('a', groups)).toEqual(['(', '(', 'L@x,y', 'or', 'web1', ')', 'and', 'G@os:Debian', ')']);
  });

  it('expands circular, unknown and malformed groups to nothing', () => {
    const groups = { a: 'N@b', b: 'N@a', self: 'N@self or web1', bad: 42 };
    expect(nodegroupComp('a', groups)).toEqual([]);
    expect(nodegroupComp('self', groups)).toEqual(['(', 'or', 'web1', ')']);
    expect(nodegroupComp('missing', groups)).toEqual([]);
    expect(nodegroupComp('bad', groups)).toEqual([]);
  });

  it('stringifies YAML scalars of a list definition', () => {
    expect(nodegroupComp('n', { n: [101, 102] })).toEqual(['L@101,102']);
  });
});

describe('expandCompoundNodegroups (the dispatcher, before publishing)', () => {
  it('replaces N@ words in place and leaves other targets alone', () => {
    expect(expandCompoundNodegroups('N@group1 and not web9', NODEGROUPS)).toBe('L@host1,host2,host3 and not web9');
    expect(expandCompoundNodegroups('N@group5 or db1', NODEGROUPS)).toBe('( L@host4,host5,host6 ) or db1');
    expect(expandCompoundNodegroups(['N@group7', 'or', 'x'], NODEGROUPS)).toEqual(['L@host1', 'or', 'x']);
    expect(expandCompoundNodegroups('web*  and G@os:Debian', NODEGROUPS)).toBe('web*  and G@os:Debian');
    expect(expandCompoundNodegroups('N@unknown or web1', NODEGROUPS)).toBe('or web1');
  });
});
