import { describe, expect, it } from 'vitest';
import { JidGenerator, isJid, jidToDate, jidToMicros, jidToTime, microsToJid, saltStamp } from './jid.js';

describe('jid', () => {
  it('formats UTC time as 20 digits YYYYMMDDhhmmssffffff', () => {
    const micros = BigInt(Date.UTC(2019, 6, 24, 15, 56, 12)) * 1000n + 509222n;
    expect(microsToJid(micros)).toBe('20190724155612509222');
    expect(jidToMicros('20190724155612509222')).toBe(micros);
  });

  it('is strictly increasing even when the clock stands still or goes back', () => {
    let now = 1_700_000_000_000_000n;
    const gen = new JidGenerator(() => now);
    const a = gen.next();
    const b = gen.next();
    now -= 5_000_000n;
    const c = gen.next();
    expect(a).toBe(microsToJid(1_700_000_000_000_000n));
    expect(BigInt(b)).toBe(BigInt(a) + 1n);
    expect(BigInt(c)).toBe(BigInt(b) + 1n);
  });

  it('gives unique increasing jids from the real clock', () => {
    const gen = new JidGenerator();
    const jids = Array.from({ length: 10_000 }, () => gen.next());
    for (let i = 1; i < jids.length; i++) expect(jids[i]! > jids[i - 1]!).toBe(true);
    expect(jids.every((j) => /^\d{20}$/.test(j))).toBe(true);
  });

  it('carries a microsecond across a second boundary', () => {
    let now = BigInt(Date.UTC(2026, 11, 31, 23, 59, 59)) * 1000n + 999_999n;
    const gen = new JidGenerator(() => now);
    expect(gen.next()).toBe('20261231235959999999');
    expect(gen.next()).toBe('20270101000000000000');
    now = 0n;
  });

  it('isJid follows Salt: 20-digit strings, or with a _suffix; numbers are not jids', () => {
    expect(isJid('20190724155612509222')).toBe(true);
    expect(isJid('20190724155612509222_12345')).toBe(true);
    expect(isJid('20190724155612509222_')).toBe(false);
    expect(isJid('2019072415561250922')).toBe(false);
    expect(isJid('2019072415561250922x')).toBe(false);
    expect(isJid(Number('20131219110700123489'))).toBe(false);
    expect(isJid(null)).toBe(false);
  });

  it('jidToTime gives Salt\'s "2019, Jul 24 15:56:12.509222"', () => {
    expect(jidToTime('20190724155612509222')).toBe('2019, Jul 24 15:56:12.509222');
    expect(jidToTime('20190104010203000000_99')).toBe('2019, Jan 04 01:02:03.000000');
    expect(jidToTime('garbage')).toBe('');
    expect(jidToDate('20190724155612509222').toISOString()).toBe('2019-07-24T15:56:12.509Z');
  });

  it('saltStamp drops a zero fraction as Python isoformat does', () => {
    const base = BigInt(Date.UTC(2019, 6, 24, 15, 56, 12)) * 1000n;
    expect(saltStamp(base + 509222n)).toBe('2019-07-24T15:56:12.509222');
    expect(saltStamp(base)).toBe('2019-07-24T15:56:12');
  });
});
