import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { storedMessageTime } from './stream-time.js';

/** What nats.js's JsMsg.time gives for a nanosecond timestamp (the reply subject's token). */
const consumedTime = (ns: bigint) => new Date(Math.floor(parseInt(ns.toString(), 10) / 1_000_000));

/** The RFC 3339 header nats-server writes for it. */
function header(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const iso = new Date(ms).toISOString(); // …T00:36:41.123Z
  return `${iso.slice(0, 19)}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}

describe('the time of a message read by sequence', () => {
  it('is the time a consumer gives for the same message, for any nanosecond timestamp', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1_700_000_000_000_000_000n, max: 1_900_000_000_000_000_000n }), (ns) => {
        expect(storedMessageTime(header(ns)).getTime()).toBe(consumedTime(ns).getTime());
      }),
      { numRuns: 2000 },
    );
    // A timestamp 100 ns below a millisecond: a consumer says the next millisecond.
    const ns = 1_796_687_801_123_999_900n;
    expect(consumedTime(ns).getTime()).toBe(1_796_687_801_124);
    expect(storedMessageTime(header(ns)).getTime()).toBe(1_796_687_801_124);
  });

  it('reads fewer fractional digits, none, and an offset, as the consumer would', () => {
    const s = BigInt(Date.parse('2026-12-08T00:36:41Z')) * 1_000_000n;
    expect(storedMessageTime('2026-12-08T00:36:41.5Z')).toEqual(consumedTime(s + 500_000_000n));
    expect(storedMessageTime('2026-12-08T00:36:41Z')).toEqual(consumedTime(s));
    expect(storedMessageTime('2026-12-08T01:36:41.25+01:00')).toEqual(consumedTime(s + 250_000_000n));
    // Through a double, as the consumer: 41.250000000 s is not exactly representable.
    expect(storedMessageTime('2026-12-08T00:36:41.25Z').getTime() - Date.parse('2026-12-08T00:36:41Z')).toBeGreaterThanOrEqual(249);
  });
});
