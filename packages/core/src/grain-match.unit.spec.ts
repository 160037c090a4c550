import { describe, expect, it } from 'vitest';
import { grainMatch, grainPcreMatch, subdictMatch, traverseDictAndList } from './grain-match.js';

const grains = {
  os: 'Debian',
  kernel: 'Linux',
  num_cpus: 2,
  virtual: true,
  roles: ['web', 'Cache'],
  ipv4: ['127.0.0.1', '10.0.0.5'],
  locale_info: { defaultencoding: 'UTF-8', defaultlanguage: 'en_US' },
  'a:b': 'colon-key',
  nested: { deep: { key: 'value' }, list: [{ name: 'first' }, { name: 'second' }] },
  planets: ['mercury', 'venus'],
  time: '12:30',
};

describe('grainMatch (salt/matchers/grain_match.py)', () => {
  it.each([
    ['os:Debian', true],
    ['os:debian', true],
    ['OS:Debian', false], // the path is not lower-cased
    ['os:Deb*', true],
    ['os:Ubuntu', false],
    ['kernel:L?nux', true],
    ['num_cpus:2', true],
    ['virtual:true', true],
    ['virtual:True', true],
    ['roles:web', true],
    ['roles:cache', true],
    ['roles:db', false],
    ['locale_info:defaultencoding:utf-8', true],
    ['locale_info:defaultencoding', true], // a key of that name exists
    ['locale_info:*', true],
    ['locale_info:nope', false],
    ['nested:deep:key:val*', true],
    ['nested:list:name:second', true],
    ['nested:list:1:name:second', true],
    ['time:12:30', true], // the value holds the delimiter
    ['time:12:*', true],
    ['missing:x', false],
    ['os', false], // no delimiter: never a match
    ['*:venus', true],
  ])('%s → %s', (tgt, expected) => {
    expect(grainMatch(tgt, grains)).toBe(expected);
  });

  it('uses a custom delimiter', () => {
    expect(grainMatch('planets%merc*', grains, '%')).toBe(true);
    expect(grainMatch('planets:merc*', grains, '%')).toBe(false);
  });
});

describe('grainPcreMatch', () => {
  it('re.match on the lower-cased value, anchored at the start', () => {
    expect(grainPcreMatch('os:deb', grains)).toBe(true);
    expect(grainPcreMatch('os:(debian|ubuntu)$', grains)).toBe(true);
    expect(grainPcreMatch('os:ebian', grains)).toBe(false);
    expect(grainPcreMatch('roles:ca.he', grains)).toBe(true);
    expect(grainPcreMatch('os:(', grains)).toBe(false);
    // Salt lower-cases the pattern too: `(?P<n>…)` becomes the invalid `(?p<n>…)`.
    expect(grainPcreMatch('os:(?P<n>deb)', grains)).toBe(false);
  });
});

describe('helpers', () => {
  it('traverseDictAndList walks keys and indexes', () => {
    expect(traverseDictAndList(grains, 'nested:list:0:name', 'x')).toBe('first');
    expect(traverseDictAndList(grains, 'roles:-1', 'x')).toBe('Cache');
    expect(traverseDictAndList(grains, 'roles:5', 'x')).toBe('x');
    expect(traverseDictAndList(grains, 'os:x', 'x')).toBe('x');
  });
  it('subdictMatch supports exact matching', () => {
    expect(subdictMatch(grains, 'os:debian', ':', { exact: true })).toBe(true);
    expect(subdictMatch(grains, 'os:deb*', ':', { exact: true })).toBe(false);
  });
});
