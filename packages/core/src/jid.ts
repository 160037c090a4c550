/**
 * Salt job ids: 20 digits, UTC `YYYYMMDDhhmmssffffff` (salt/utils/jid.py `gen_jid`).
 * Unlike Salt without `unique_jid`, ids from one generator are strictly increasing:
 * two jobs in the same microsecond get consecutive jids.
 */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

/** A source of wall-clock time in microseconds since the epoch. */
export type MicrosClock = () => bigint;

export const systemMicros: MicrosClock = () => BigInt(Date.now()) * 1000n;

function pad(n: number | bigint, width: number): string {
  return n.toString().padStart(width, '0');
}

/** Formats microseconds since the epoch as a 20-digit jid (UTC). */
export function microsToJid(micros: bigint): string {
  const ms = Number(micros / 1000n);
  const d = new Date(ms);
  const frac = micros % 1_000_000n;
  return (
    pad(d.getUTCFullYear(), 4) +
    pad(d.getUTCMonth() + 1, 2) +
    pad(d.getUTCDate(), 2) +
    pad(d.getUTCHours(), 2) +
    pad(d.getUTCMinutes(), 2) +
    pad(d.getUTCSeconds(), 2) +
    pad(frac, 6)
  );
}

/** Parses the first 20 digits of a jid back to microseconds since the epoch. */
export function jidToMicros(jid: string): bigint {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{6})/.exec(jid);
  if (!m) throw new RangeError(`not a jid: ${jid}`);
  const [, y, mo, d, h, mi, s, f] = m as unknown as [string, string, string, string, string, string, string, string];
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  return BigInt(ms) * 1000n + BigInt(f);
}

/**
 * A jid generator. Strictly increasing within one generator: when the clock has not moved
 * past the last jid, the next jid is the last one plus one microsecond.
 */
export class JidGenerator {
  private last = 0n;
  constructor(private readonly clock: MicrosClock = systemMicros) {}

  next(): string {
    let now = this.clock();
    if (now <= this.last) now = this.last + 1n;
    this.last = now;
    return microsToJid(now);
  }
}

const defaultGenerator = new JidGenerator();

/** A fresh jid from the process-wide generator. */
export function genJid(): string {
  return defaultGenerator.next();
}

/**
 * Salt's `is_jid`: a string of 20 digits, or longer than 21 with `_` at index 20
 * (a `unique_jid` suffix). Numbers are not jids.
 */
export function isJid(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  if (value.length !== 20 && !(value.length > 21 && value[20] === '_')) return false;
  return /^\d{20}$/.test(value.slice(0, 20));
}

/** Salt's `jid_to_time`: `"2019, Jul 24 15:56:12.509222"`, or `""` for a non-jid. */
export function jidToTime(jid: string | number | bigint): string {
  const s = String(jid);
  if (!(s.length === 20 || (s.length > 21 && s[20] === '_')) || !/^\d{20}/.test(s)) return '';
  const month = MONTHS[Number(s.slice(4, 6)) - 1];
  if (month === undefined) return '';
  return `${s.slice(0, 4)}, ${month} ${s.slice(6, 8)} ${s.slice(8, 10)}:${s.slice(10, 12)}:${s.slice(12, 14)}.${s.slice(14, 20)}`;
}

/** The instant a jid was assigned, as a Date (millisecond precision). */
export function jidToDate(jid: string): Date {
  return new Date(Number(jidToMicros(jid) / 1000n));
}

/** Salt's `_stamp`: `datetime.utcnow().isoformat()` — no zone, fraction dropped when zero. */
export function saltStamp(micros: bigint = systemMicros()): string {
  const jid = microsToJid(micros);
  const base = `${jid.slice(0, 4)}-${jid.slice(4, 6)}-${jid.slice(6, 8)}T${jid.slice(8, 10)}:${jid.slice(10, 12)}:${jid.slice(12, 14)}`;
  const frac = jid.slice(14, 20);
  return frac === '000000' ? base : `${base}.${frac}`;
}
