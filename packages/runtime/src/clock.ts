import { saltStamp, type MicrosClock } from '@jobledger/core';

/**
 * Wall-clock microseconds for jids: `process.hrtime.bigint()` anchored to `Date.now()` at
 * start, so jids carry real microseconds (Date.now() alone only has milliseconds).
 * The monotonic clock does not follow steps of the wall clock, so the anchor is reset when
 * the two drift apart by more than `maxDriftMicros` (the JidGenerator keeps jids increasing
 * if that moves time backwards).
 */
export function anchoredMicrosClock(opts: { now?: () => number; hrtime?: () => bigint; maxDriftMicros?: bigint } = {}): MicrosClock {
  const now = opts.now ?? (() => Date.now());
  const hrtime = opts.hrtime ?? (() => process.hrtime.bigint());
  const maxDrift = opts.maxDriftMicros ?? 1_000_000n;
  let wallAnchor = BigInt(now()) * 1000n;
  let hrAnchor = hrtime();
  return () => {
    const micros = wallAnchor + (hrtime() - hrAnchor) / 1000n;
    const wall = BigInt(now()) * 1000n;
    const drift = micros - wall;
    if (drift > maxDrift || drift < -maxDrift) {
      wallAnchor = wall;
      hrAnchor = hrtime();
      return wall;
    }
    return micros;
  };
}

/** The process-wide microsecond clock. */
export const microsClock: MicrosClock = anchoredMicrosClock();

/** Salt's `_stamp` for now, with real microseconds. */
export function stampNow(): string {
  return saltStamp(microsClock());
}
