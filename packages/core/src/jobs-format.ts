/**
 * Salt's job records and the pure parts of the `jobs` runner (salt/utils/jid.py,
 * salt/runners/jobs.py, salt/utils/args.py): how a job's load is shown by `list_jobs`,
 * `list_job`, `print_job`; how `lookup_jid` and `exit_success` read a job's returns; the
 * `list_jobs` filters (fnmatch globs, comma lists, dateutil times) and their translation to
 * SQL predicates on the `jobs` read model. No I/O.
 */
import { jidToMicros, jidToTime, microsToJid } from './jid.js';
import { globMatch } from './targeting.js';

export type JobLoad = Readonly<Record<string, unknown>>;
export type JobRecord = Record<string, unknown>;

/** Salt's text for a job whose load is empty (runner `_format_job_instance`). */
export const NO_JOB_ERROR = 'Cannot contact returner or no job with this jid';
/** `lookup_jid missing=True`: an expected minion without a return. */
export const MINION_DID_NOT_RETURN = 'Minion did not return';

const isDict = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Python's `list(x)`: a list is copied, a string becomes its characters, a dict its keys. */
function pyList(v: unknown): unknown[] {
  if (Array.isArray(v)) return [...v];
  if (typeof v === 'string') return [...v];
  if (isDict(v)) return Object.keys(v);
  return [];
}

/**
 * The job's metadata as Salt finds it: `load.metadata`, else `load.kwargs.metadata`, else the
 * `metadata` of a keyword-argument mapping (`{…, __kwarg__: true}`) in `load.arg` (#68481).
 */
export function jobMetadata(load: JobLoad): { found: boolean; value?: unknown } {
  if ('metadata' in load) return { found: true, value: load.metadata ?? {} };
  const kwargs = load.kwargs;
  if (isDict(kwargs) && 'metadata' in kwargs) return { found: true, value: kwargs.metadata ?? {} };
  if (Array.isArray(load.arg)) {
    for (const a of load.arg) {
      if (isDict(a) && a.__kwarg__ === true && 'metadata' in a) return { found: true, value: a.metadata };
    }
  }
  return { found: false };
}

/**
 * `salt.utils.jid.format_job_instance`: the record `list_jobs` shows for a job's load.
 * Defaults: `unknown-function`, `[]`, `unknown-target`, `list` (not `glob`), `root`.
 */
export function formatJobInstance(load: JobLoad): JobRecord {
  const ret: JobRecord = {
    Function: load.fun ?? 'unknown-function',
    Arguments: pyList(load.arg ?? []),
    Target: load.tgt ?? 'unknown-target',
    'Target-type': load.tgt_type ?? 'list',
    User: load.user ?? 'root',
  };
  const meta = jobMetadata(load);
  if (meta.found) ret.Metadata = meta.value;
  return ret;
}

/** `format_jid_instance`: the record plus `StartTime` (the jid's UTC time). */
export function formatJidInstance(jid: string, load: JobLoad): JobRecord {
  return { ...formatJobInstance(load), StartTime: jidToTime(jid) };
}

/** `format_jid_instance_ext` (`list_jobs_filter`): the record plus `JID` and `StartTime`. */
export function formatJidInstanceExt(jid: string, load: JobLoad): JobRecord {
  return { ...formatJobInstance(load), JID: jid, StartTime: jidToTime(jid) };
}

/**
 * The jobs runner's own `_format_jid_instance` (`list_job`, `print_job`, `active`): as above,
 * plus `Minions` when the load has them, and only `{Error, StartTime}` for an empty load.
 */
export function formatRunnerJidInstance(jid: string, load: JobLoad): JobRecord {
  if (Object.keys(load).length === 0) return { Error: NO_JOB_ERROR, StartTime: jidToTime(jid) };
  const ret = formatJobInstance(load);
  if ('Minions' in load) ret.Minions = load.Minions;
  ret.StartTime = jidToTime(jid);
  return ret;
}

/** Salt's `EndTime` text for an instant: `jid_to_time(gen_jid())`, e.g. `2019, Jul 24 15:56:12.509222`. */
export function endTimeText(at: Date): string {
  return jidToTime(microsToJid(BigInt(at.getTime()) * 1000n));
}

/** Python truthiness of a JSON value. */
export function pyTruthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isDict(v)) return Object.keys(v).length > 0;
  return true;
}

/** One minion's stored return (Salt's `get_jid` value: the `full_ret` for SQL caches). */
export type StoredReturns = Readonly<Record<string, unknown>>;

/**
 * `lookup_jid`: `{minion: return}` from `list_job`'s `Result`; `returned: false` leaves those
 * out; `missing: true` adds `Minion did not return` for each of `Minions` without a result.
 * When the first result carries `out`, Salt wraps the answer as `{outputter, data}`.
 */
export function lookupJidReturn(
  minions: readonly string[],
  result: StoredReturns,
  opts: { returned?: boolean; missing?: boolean } = {},
): unknown {
  const returned = opts.returned ?? true;
  const ret: Record<string, unknown> = {};
  if (returned) {
    for (const [minion, r] of Object.entries(result)) ret[minion] = isDict(r) && 'return' in r ? r.return : null;
  }
  if (opts.missing) {
    for (const m of minions) if (!(m in result)) ret[m] = MINION_DID_NOT_RETURN;
  }
  const first = Object.values(result)[0];
  const out = isDict(first) ? first.out : undefined;
  if (pyTruthy(out)) return { outputter: out, data: ret };
  return ret;
}

/** `exit_success`: true per minion whose stored `return` is truthy; expected minions without one are false. */
export function exitSuccess(minions: readonly string[], result: StoredReturns): Record<string, boolean> {
  const ret: Record<string, boolean> = {};
  for (const m of minions) {
    const r = result[m];
    ret[m] = isDict(r) && 'return' in r ? pyTruthy(r.return) : false;
  }
  for (const [m, r] of Object.entries(result)) {
    if (isDict(r) && 'return' in r && pyTruthy(r.return)) ret[m] = true;
  }
  return ret;
}

/** A job a minion reports through `saltutil.running` (its proc data). */
export type RunningJob = Readonly<Record<string, unknown>>;

/**
 * `jobs.active` from the `saltutil.running` replies (`{minion: [proc data, …]}`; replies that
 * are not lists are skipped): `{jid: {…record, StartTime, Running: [{minion: pid}], Returned: []}}`.
 * `Returned` is filled in afterwards from the job cache.
 */
export function activeJobs(
  replies: Readonly<Record<string, unknown>>,
): Record<string, JobRecord & { Running: unknown[]; Returned: string[] }> {
  const ret: Record<string, JobRecord & { Running: unknown[]; Returned: string[] }> = {};
  for (const [minion, data] of Object.entries(replies)) {
    if (!Array.isArray(data)) continue;
    for (const job of data) {
      if (!isDict(job) || typeof job.jid !== 'string') continue;
      const jid = job.jid;
      const pid = job.pid ?? null;
      const have = ret[jid];
      if (have === undefined) {
        ret[jid] = { ...formatRunnerJidInstance(jid, job), Running: [{ [minion]: pid }], Returned: [] };
      } else {
        have.Running.push({ [minion]: pid });
      }
    }
  }
  return ret;
}

// ---------------------------------------------------------------------------------------------
// list_jobs filters

/** Python's `str()` of a scalar JSON value. */
function pyStr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  return typeof v === 'number' ? String(v) : JSON.stringify(v);
}

/** `salt.utils.args.split_input`: a list as it is, anything else split on commas and stripped. */
export function splitInput(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(pyStr);
  return pyStr(value)
    .split(',')
    .map((s) => s.trim());
}

/** `list_jobs` keyword filters as Salt takes them (values as parsed from the command line). */
export interface ListJobsFilters {
  search_metadata?: unknown;
  search_function?: unknown;
  search_target?: unknown;
  start_time?: unknown;
  end_time?: unknown;
}

/** A `list_jobs` filter in a form that can be evaluated (in memory or in SQL). */
export interface NormalisedFilters {
  /** Metadata pairs, any of which must be equal; `null` when the filter is not a mapping (nothing matches). */
  metadata?: Record<string, unknown> | null;
  functions?: string[];
  targets?: string[];
  /** Inclusive bounds on the start time, in microseconds since the epoch (UTC). */
  startMicros?: bigint;
  endMicros?: bigint;
}

/** Salt's truthiness test on a filter argument (`if search_function:`). */
const given = (v: unknown): boolean => pyTruthy(v);

/**
 * Turns Salt's `list_jobs` arguments into normalised filters. Throws DateParseError for a
 * time dateutil would not parse.
 */
export function normaliseListJobsFilters(f: ListJobsFilters, now: Date = new Date()): NormalisedFilters {
  const out: NormalisedFilters = {};
  if (given(f.search_metadata)) out.metadata = isDict(f.search_metadata) ? { ...f.search_metadata } : null;
  if (given(f.search_function)) out.functions = splitInput(f.search_function);
  if (given(f.search_target)) out.targets = splitInput(f.search_target);
  if (given(f.start_time)) out.startMicros = parseDateTime(f.start_time, now);
  if (given(f.end_time)) out.endMicros = parseDateTime(f.end_time, now);
  return out;
}

/** JSON equality of two values, for metadata matching (keys in any order). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isDict(a) && isDict(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && jsonEqual(a[k], b[k]));
  }
  return false;
}

/**
 * Salt's `list_jobs` filter on one formatted record (`format_jid_instance`), in memory: the
 * reference the SQL translation is tested against. All given filters must match.
 */
export function matchesListJobs(jid: string, record: JobRecord, f: NormalisedFilters): boolean {
  if (f.metadata !== undefined) {
    if (f.metadata === null || !('Metadata' in record) || !isDict(record.Metadata)) return false;
    const meta = record.Metadata;
    if (!Object.entries(f.metadata).some(([k, v]) => k in meta && jsonEqual(meta[k], v))) return false;
  }
  if (f.targets !== undefined) {
    const t = record.Target;
    const targets = typeof t === 'string' ? [t] : Array.isArray(t) ? t : [];
    if (!targets.some((x) => typeof x === 'string' && f.targets!.some((g) => globMatch(x, g)))) return false;
  }
  if (f.functions !== undefined) {
    const fun = record.Function;
    if (typeof fun !== 'string' || !f.functions.some((g) => globMatch(fun, g))) return false;
  }
  if (f.startMicros !== undefined || f.endMicros !== undefined) {
    let at: bigint;
    try {
      at = jidToMicros(jid);
    } catch {
      return false;
    }
    if (f.startMicros !== undefined && at < f.startMicros) return false;
    if (f.endMicros !== undefined && at > f.endMicros) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// fnmatch globs as SQL

/** How one fnmatch glob is best evaluated in SQL. */
export type SqlGlob =
  | { kind: 'exact'; value: string }
  /** `LIKE '<prefix>%'` (a btree with text_pattern_ops serves it). */
  | { kind: 'prefix'; like: string }
  /** A PostgreSQL regular expression (ARE), anchored at both ends. */
  | { kind: 'regex'; regex: string }
  /** A glob that matches nothing (`[]` is an empty set in fnmatch). */
  | { kind: 'never' };

/** Escapes `%`, `_` and the escape character itself for `LIKE … ESCAPE '\'`. */
export function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, '\\$&');
}

/** Escapes a literal for a PostgreSQL ARE (every non-alphanumeric ASCII character). */
function escapeAre(s: string): string {
  return s.replace(/[^A-Za-z0-9\u0080-\uFFFF]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\${c}`));
}

/**
 * Python's `fnmatch.translate` for PostgreSQL: a whole-string match, `*` any run (newlines
 * included: PostgreSQL's `.` matches them by default), `?` one character, `[seq]`, `[!seq]`,
 * no backslash escapes, case-sensitive.
 */
export function globToSql(glob: string): SqlGlob {
  if (!/[*?[]/.test(glob)) return { kind: 'exact', value: glob };
  const star = glob.indexOf('*');
  if (star >= 0 && /^\*+$/.test(glob.slice(star)) && !/[?[]/.test(glob.slice(0, star))) {
    return { kind: 'prefix', like: escapeLike(glob.slice(0, star)) + '%' };
  }
  let out = '';
  for (let i = 0; i < glob.length;) {
    const c = glob[i++]!;
    if (c === '*') {
      out += '.*';
      while (glob[i] === '*') i++;
    } else if (c === '?') {
      out += '.';
    } else if (c === '[') {
      let j = i;
      if (glob[j] === '!') j++;
      if (glob[j] === ']') j++;
      while (j < glob.length && glob[j] !== ']') j++;
      if (j >= glob.length) {
        out += '\\[';
        continue;
      }
      let body = glob.slice(i, j);
      i = j + 1;
      const negate = body.startsWith('!');
      if (negate) body = body.slice(1);
      if (body.length === 0) {
        if (!negate) return { kind: 'never' }; // `[]`… cannot occur (`]` first is literal), kept for safety
        out += '.';
        continue;
      }
      // Inside a bracket expression of an ARE a backslash escapes; `^` first negates.
      let set = body.replace(/\\/g, '\\\\');
      if (!negate && set.startsWith('^')) set = '\\' + set;
      out += `[${negate ? '^' : ''}${set}]`;
    } else {
      out += escapeAre(c);
    }
  }
  return { kind: 'regex', regex: `^${out}$` };
}

// ---------------------------------------------------------------------------------------------
// dateutil times

/** dateutil's `ParserError`. */
export class DateParseError extends Error {
  override readonly name = 'ParserError';
  readonly retryable = false;
}

const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const FULL_MONTHS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];
const WEEKDAYS = [
  'mon',
  'tue',
  'wed',
  'thu',
  'fri',
  'sat',
  'sun',
  'monday',
  'tuesday',
  'wednesday',
  'thursday',
  'friday',
  'saturday',
  'sunday',
];

function monthOf(word: string): number | undefined {
  const w = word.toLowerCase().replace(/\.$/, '');
  let i = MONTH_NAMES.indexOf(w);
  if (i < 0) i = FULL_MONTHS.indexOf(w);
  if (i < 0 && w === 'sept') i = 8;
  return i < 0 ? undefined : i + 1;
}

function fraction(f: string | undefined): number {
  if (!f) return 0;
  return Number((f + '000000').slice(0, 6));
}

function twoDigitYear(y: number, now: Date): number {
  const year = now.getUTCFullYear();
  let full = year - (year % 100) + y;
  if (full > year + 50) full -= 100;
  else if (full <= year - 50) full += 100;
  return full;
}

interface Parts {
  year?: number;
  month?: number;
  day?: number;
  hour?: number;
  minute?: number;
  second?: number;
  micro?: number;
  /** Offset east of UTC, in minutes. */
  offset?: number;
}

function offsetMinutes(tok: string): number | undefined {
  if (/^(z|utc|gmt)$/i.test(tok)) return 0;
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(tok);
  if (!m) return undefined;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
}

function build(p: Parts, text: string, now: Date): bigint {
  const year = p.year ?? now.getUTCFullYear();
  const month = p.month ?? now.getUTCMonth() + 1;
  const day = p.day ?? now.getUTCDate();
  const hour = p.hour ?? 0;
  const minute = p.minute ?? 0;
  const second = p.second ?? 0;
  if (month < 1 || month > 12) throw new DateParseError(`month must be in 1..12: ${text}`);
  const dim = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > dim) throw new DateParseError(`day is out of range for month: ${text}`);
  if (hour > 23 || minute > 59 || second > 59) throw new DateParseError(`hour, minute or second out of range: ${text}`);
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const d = new Date(ms);
  d.setUTCFullYear(year); // years below 100
  return BigInt(d.getTime() - (p.offset ?? 0) * 60_000) * 1000n + BigInt(p.micro ?? 0);
}

/**
 * Parses a time the way Salt's `list_jobs` does with `dateutil.parser.parse`, for the forms
 * people type: ISO 8601 (`2026-11-25`, `2026-11-25T18:14:15.937764`, `2026-11-25 18:14`),
 * Salt's own `StartTime` (`2026, Nov 25 18:14:15.937764`, `2015, Mar 16 19:00`),
 * `Nov 25 2026 6pm`, `25 Nov 2026`, `11/25/2026`, `2026/11/25 18:00`, `20261125`,
 * `20261125181415` and a 20-digit jid. Missing date parts default to today's, a missing
 * time to midnight. Times are UTC, as Salt's `StartTime`s are; a zone (`Z`, `+02:00`) is
 * honoured where Python would refuse to compare. Returns microseconds since the epoch.
 */
export function parseDateTime(value: unknown, now: Date = new Date()): bigint {
  const text = typeof value === 'string' ? value : pyStr(value);
  const s = text.trim();
  if (s === '') throw new DateParseError(`String does not contain a date: ${text}`);
  const unknown = () => new DateParseError(`Unknown string format: ${text}`);

  if (/^\d+$/.test(s)) {
    if (s.length === 20) return jidToMicros(s);
    const num = (a: number, b: number) => Number(s.slice(a, b));
    if (s.length === 8) return build({ year: num(0, 4), month: num(4, 6), day: num(6, 8) }, text, now);
    if (s.length === 12)
      return build({ year: num(0, 4), month: num(4, 6), day: num(6, 8), hour: num(8, 10), minute: num(10, 12) }, text, now);
    if (s.length === 14) {
      return build(
        { year: num(0, 4), month: num(4, 6), day: num(6, 8), hour: num(8, 10), minute: num(10, 12), second: num(12, 14) },
        text,
        now,
      );
    }
    if (s.length === 4) return build({ year: num(0, 4) }, text, now);
    if (s.length <= 2) return build({ day: num(0, s.length) }, text, now);
    throw unknown();
  }

  const iso =
    /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?$/i.exec(s);
  if (iso) {
    const p: Parts = { year: Number(iso[1]), month: Number(iso[2]), day: Number(iso[3]) };
    if (iso[4] !== undefined) {
      p.hour = Number(iso[4]);
      p.minute = Number(iso[5]);
      p.second = Number(iso[6] ?? 0);
      p.micro = fraction(iso[7]);
    }
    if (iso[8] !== undefined) p.offset = offsetMinutes(iso[8]);
    return build(p, text, now);
  }

  const p: Parts = {};
  const bare: number[] = [];
  const tokens = s
    .replace(/,/g, ' ')
    .split(/\s+/)
    .filter((t) => t !== '');
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    const low = tok.toLowerCase();
    const time = /^(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(am|pm)?$/i.exec(tok);
    const hourOnly = /^(\d{1,2})(am|pm)$/i.exec(tok);
    const dmy = /^(\d{1,4})([/.-])(\d{1,2})\2(\d{1,4})$/.exec(tok);
    const md = /^(\d{1,2})\/(\d{1,2})$/.exec(tok);
    const month = monthOf(tok);
    if (time || hourOnly) {
      if (p.hour !== undefined) throw unknown();
      let hour = Number((time ?? hourOnly)![1]);
      let ampm = (time ? time[5] : hourOnly![2])?.toLowerCase();
      if (ampm === undefined && /^(am|pm)$/i.test(tokens[i + 1] ?? '')) ampm = tokens[++i]!.toLowerCase();
      if (ampm !== undefined) {
        if (hour < 1 || hour > 12) throw unknown();
        hour = (hour % 12) + (ampm === 'pm' ? 12 : 0);
      }
      p.hour = hour;
      p.minute = time ? Number(time[2]) : 0;
      p.second = time ? Number(time[3] ?? 0) : 0;
      p.micro = time ? fraction(time[4]) : 0;
    } else if (dmy) {
      if (p.year !== undefined || p.month !== undefined || p.day !== undefined) throw unknown();
      const [a, b, c] = [dmy[1]!, dmy[3]!, dmy[4]!];
      if (a.length === 4) Object.assign(p, { year: Number(a), month: Number(b), day: Number(c) });
      else {
        const y = Number(c);
        Object.assign(p, { month: Number(a), day: Number(b), year: c.length <= 2 ? twoDigitYear(y, now) : y });
      }
    } else if (md) {
      if (p.month !== undefined || p.day !== undefined) throw unknown();
      p.month = Number(md[1]);
      p.day = Number(md[2]);
    } else if (month !== undefined) {
      if (p.month !== undefined) throw unknown();
      p.month = month;
    } else if (WEEKDAYS.includes(low.replace(/\.$/, ''))) {
      continue;
    } else if (offsetMinutes(tok) !== undefined && (p.hour !== undefined || p.day !== undefined)) {
      p.offset = offsetMinutes(tok);
    } else if (/^\d{1,4}$/.test(tok)) {
      bare.push(Number(tok));
      if (tok.length === 4 || Number(tok) > 31) {
        if (p.year !== undefined) throw unknown();
        p.year = Number(tok);
        bare.pop();
      }
    } else if (/^\d{1,2}(st|nd|rd|th)$/i.test(tok)) {
      bare.push(Number(tok.replace(/\D/g, '')));
    } else {
      throw unknown();
    }
  }
  // Remaining small numbers: the day when the month was named, else month then day.
  for (const n of bare) {
    if (p.month !== undefined && p.day === undefined) p.day = n;
    else if (p.month === undefined) p.month = n;
    else if (p.day === undefined) p.day = n;
    else if (p.year === undefined) p.year = twoDigitYear(n, now);
    else throw unknown();
  }
  if (Object.keys(p).length === 0) throw new DateParseError(`String does not contain a date: ${text}`);
  return build(p, text, now);
}
