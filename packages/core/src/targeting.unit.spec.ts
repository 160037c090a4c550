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
    expect(() => matchTarget('a', 'role:web', 'pillar')).toThrow("target type 'pillar' is not supported yet");
    expect(() => matchTarget('a', 'role:w.*', 'pillar_pcre')).toThrow(/not supported/);
    expect(() => matchTarget('a', '%all', 'range')).toThrow(/not supported/);
    expect(() => matchTarget('a', 'a or I@role:web', 'compound', { grains: {} })).toThrow("target type 'pillar' is not supported yet");
  });
});

describe('grain, address and compound targets', () => {
  const web1 = {
    id: 'web1',
    grains: { id: 'web1', kernel: 'Linux', os: 'Debian', roles: ['web', 'Cache'], ipv4: ['127.0.0.1', '10.1.2.3'], ipv6: ['::1'] },
  };
  const db1 = { id: 'db1', grains: { id: 'db1', kernel: 'Linux', os: 'Ubuntu', roles: ['db'], ipv4: ['127.0.0.1', '10.9.0.1'], ipv6: [] } };
  const bsd = { id: 'bsd1', grains: { id: 'bsd1', kernel: 'FreeBSD', os: 'FreeBSD', ipv4: ['192.168.1.5'] } };
  const agents = [web1, db1, bsd];

  it('matches grains case-insensitively, list members, with a custom delimiter', () => {
    expect(matchTarget('web1', 'kernel:linux', 'grain', web1)).toBe(true);
    expect(matchTarget('web1', 'roles:cache', 'grain', web1)).toBe(true);
    expect(matchTarget('web1', 'roles|web', 'grain', web1, { delimiter: '|' })).toBe(true);
    expect(matchTarget('web1', 'roles:web', 'grain', web1, { delimiter: '|' })).toBe(false);
    expect(matchTarget('bsd1', 'kernel:Linux', 'grain', bsd)).toBe(false);
    expect(matchTarget('db1', 'os:(Deb|Ubu)', 'grain_pcre', db1)).toBe(true);
  });

  it('matches -S addresses and networks against the ipv4/ipv6 grains', () => {
    expect(resolveTarget(agents, '127.0.0.1', 'ipcidr').minions).toEqual(['db1', 'web1']);
    expect(resolveTarget(agents, '10.0.0.0/8', 'ipcidr').minions).toEqual(['db1', 'web1']);
    expect(resolveTarget(agents, '::1', 'ipcidr').minions).toEqual(['web1']);
    expect(resolveTarget(agents, 'not-an-ip', 'ipcidr').minions).toEqual([]);
  });

  it('evaluates compound targets', () => {
    const tgt = 'web1 or G@kernel:Linux and not L@web1';
    expect(resolveTarget(agents, tgt, 'compound')).toEqual({ minions: ['db1', 'web1'], missing: [] });
    expect(resolveTarget(agents, 'G@kernel:Linux not E@web', 'compound').minions).toEqual(['db1']);
    expect(resolveTarget(agents, '( web* or db* ) and S@10.0.0.0/8', 'compound').minions).toEqual(['db1', 'web1']);
    expect(resolveTarget(agents, 'G%@roles%db or P@os:free.*', 'compound').minions).toEqual(['bsd1', 'db1']);
  });

  it('reports L@ names no agent has as missing, except right after not', () => {
    expect(resolveTarget(agents, 'L@web1,ghost or db1', 'compound')).toEqual({ minions: ['db1', 'web1'], missing: ['ghost'] });
    expect(resolveTarget(agents, 'web1 and not L@ghost', 'compound')).toEqual({ minions: ['web1'], missing: [] });
  });

  it('is greedy for agents whose grains are not known (the dispatcher), as Salt’s master is', () => {
    const known = [...agents, 'unknown1'];
    expect(resolveTarget(known, 'kernel:Linux', 'grain').minions).toEqual(['db1', 'unknown1', 'web1']);
    expect(resolveTarget(known, '10.0.0.0/8', 'ipcidr').minions).toEqual(['db1', 'unknown1', 'web1']);
    expect(resolveTarget(known, 'G@kernel:Linux and not G@os:Ubuntu', 'compound').minions).toEqual(['web1']);
  });

  it('expands nodegroup targets with the master’s nodegroups', () => {
    const nodegroups = { webs: 'web*', linux: 'G@kernel:Linux', both: 'N@webs and N@linux', ids: ['db1', 'bsd1'] };
    expect(resolveTarget(agents, 'both', 'nodegroup', { nodegroups }).minions).toEqual(['web1']);
    expect(resolveTarget(agents, 'ids', 'nodegroup', { nodegroups }).minions).toEqual(['bsd1', 'db1']);
    expect(resolveTarget(agents, 'nope', 'nodegroup', { nodegroups }).minions).toEqual([]);
    expect(resolveTarget(agents, 'N@linux and not db1', 'compound', { nodegroups }).minions).toEqual(['web1']);
  });
});
