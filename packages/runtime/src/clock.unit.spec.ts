import { describe, expect, it } from 'vitest';
import { JidGenerator, microsToJid } from '@jobledger/core';
import { anchoredMicrosClock } from './clock.js';

describe('anchoredMicrosClock', () => {
  it('adds monotonic microseconds to the wall-clock anchor', () => {
    let hr = 5_000_000_000n; // ns
    const clock = anchoredMicrosClock({ now: () => Date.UTC(2026, 10, 25, 18, 0, 0, 123), hrtime: () => hr });
    expect(microsToJid(clock())).toBe('20261125180000123000');
    hr += 4_567n * 1000n + 999n; // 4567.999 µs later
    expect(microsToJid(clock())).toBe('20261125180000127567');
  });

  it('re-anchors when the wall clock was stepped', () => {
    let wall = Date.UTC(2026, 0, 1);
    const hr = 0n;
    const clock = anchoredMicrosClock({ now: () => wall, hrtime: () => hr });
    expect(clock()).toBe(BigInt(wall) * 1000n);
    wall += 5_000; // stepped 5 s forward, monotonic clock did not move
    expect(clock()).toBe(BigInt(wall) * 1000n);
  });

  it('gives 20-digit jids that strictly increase from a JidGenerator', () => {
    const gen = new JidGenerator(anchoredMicrosClock());
    const jids = Array.from({ length: 1000 }, () => gen.next());
    for (const j of jids) expect(j).toMatch(/^\d{20}$/);
    for (let i = 1; i < jids.length; i++) expect(jids[i]! > jids[i - 1]!).toBe(true);
  });
});
