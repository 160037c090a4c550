/**
 * The time of a stream message as every reader of the projector must see it. A consumed message
 * (nats.js's `JsMsg.time`) gives the whole milliseconds below its nanosecond timestamp taken
 * through a double (`Math.floor(parseInt(ns) / 1e6)`: 19 digits do not fit in one, so a time
 * within a few hundred nanoseconds below a millisecond comes out in the next one). A stored
 * message read by sequence (`StoredMsg.time`, a direct get or a get from the leader) parses the
 * RFC 3339 header, exactly. The read models take the first; a message the projector read by
 * sequence (to fill a gap) must get the same time, or a rebuild, which consumes it, differs from
 * the live row by a millisecond.
 */
export function storedMessageTime(timestamp: string): Date {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(timestamp);
  if (m === null) return new Date(Date.parse(timestamp));
  const seconds = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(seconds)) return new Date(Date.parse(timestamp));
  const nanos = BigInt(seconds) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0').slice(0, 9));
  return new Date(Math.floor(Number(nanos) / 1_000_000));
}
