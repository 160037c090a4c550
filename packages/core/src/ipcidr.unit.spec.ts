import { describe, expect, it } from 'vitest';
import { formatIpAddress, ipcidrMatch, parseIpAddress, parseIpNetwork } from './ipcidr.js';

describe('addresses as Python’s ipaddress reads them', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['FE80::0001', 'fe80::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::ffff:10.1.2.3', '::ffff:a01:203'],
    ['fe80::1%eth0', 'fe80::1'],
    ['::', '::'],
  ])('%s → %s', (text, canonical) => {
    const a = parseIpAddress(text);
    expect(a).toBeDefined();
    expect(formatIpAddress(a!)).toBe(canonical);
  });
  it.each(['256.1.1.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', 'web1', '', ':1', '1.2.3.4::'])(
    '%s is not an address',
    (text) => expect(parseIpAddress(text)).toBeUndefined(),
  );
});

describe('networks (strict)', () => {
  it('reads prefix lengths and dotted masks, refuses host bits', () => {
    expect(parseIpNetwork('10.0.0.0/8')).toEqual({ version: 4, network: 10n << 24n, prefix: 8 });
    expect(parseIpNetwork('10.0.0.0/255.0.0.0')).toMatchObject({ prefix: 8 });
    expect(parseIpNetwork('10.0.0.0/0.255.255.255')).toMatchObject({ prefix: 8 });
    expect(parseIpNetwork('10.1.2.3')).toMatchObject({ prefix: 32 });
    expect(parseIpNetwork('10.1.2.3/8')).toBeUndefined();
    expect(parseIpNetwork('10.0.0.0/33')).toBeUndefined();
    expect(parseIpNetwork('fe80::/10')).toMatchObject({ version: 6, prefix: 10 });
    expect(parseIpNetwork('0.0.0.0/0')).toMatchObject({ prefix: 0 });
  });
});

describe('ipcidrMatch', () => {
  const grains = { ipv4: ['127.0.0.1', '192.168.153.141'], ipv6: ['::1', 'fe80::a00:27ff:fe4e:66a1'] };
  it('an address must be one of the grain’s addresses', () => {
    expect(ipcidrMatch('127.0.0.1', grains)).toBe(true);
    expect(ipcidrMatch('192.168.153.142', grains)).toBe(false);
    expect(ipcidrMatch('0:0::1', grains)).toBe(true);
  });
  it('a network must hold one of them', () => {
    expect(ipcidrMatch('192.168.153.0/24', grains)).toBe(true);
    expect(ipcidrMatch('10.0.0.0/8', grains)).toBe(false);
    expect(ipcidrMatch('fe80::/10', grains)).toBe(true);
    expect(ipcidrMatch('0.0.0.0/0', grains)).toBe(true);
  });
  it('an invalid target or a missing grain matches nothing', () => {
    expect(ipcidrMatch('192.168.153.1/24', grains)).toBe(false);
    expect(ipcidrMatch('web1', grains)).toBe(false);
    expect(ipcidrMatch('127.0.0.1', {})).toBe(false);
    expect(ipcidrMatch('::1', { ipv4: ['127.0.0.1'] })).toBe(false);
  });
});
