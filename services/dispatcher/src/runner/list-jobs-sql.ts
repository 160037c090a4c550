import { globToSql, microsToJid, type NormalisedFilters, type SqlGlob } from '@jobledger/core';

/**
 * The SQL behind `jobs.list_jobs`, `jobs.list_jobs_filter` and `jobs.last_run`: Salt's filters
 * evaluated by PostgreSQL on the indexed columns of the `jobs` read model, newest jobs first,
 * one page at a time — never every job in memory.
 *
 * - `search_function`: a glob without wildcards is `fun = …`; `prefix*` is `fun LIKE 'prefix%'`
 *   (served by `idx_jobs_fun_pattern`, text_pattern_ops); anything else an anchored `~` regex.
 * - `search_target`: Salt matches the target TEXT (each element of a list target), not the
 *   minions. A plain name is `tgt @> '"name"'` (jsonb containment, which also finds the name
 *   inside a list target: served by the GIN `idx_jobs_tgt`); globs test each element.
 * - `search_metadata`: any key/value pair equal in the job's metadata (`metadata`, else the
 *   `metadata` of a `__kwarg__` mapping in `arg`); not a mapping → nothing matches.
 * - `start_time`/`end_time`: inclusive, on the jid's microsecond time; a range on
 *   `start_time` (the `idx_jobs_start_time` order) narrowed exactly by the jid text.
 */

/** jobledger's job states (`status=` of `list_jobs`, the HTTP API's `GET /jobs?status=`). */
export const JOB_STATUSES = ['running', 'failed', 'succeeded', 'no-return'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export interface ListJobsQuery {
  filters: NormalisedFilters;
  /** Globs on the user who published (jobledger's, not Salt's). */
  users?: readonly string[];
  status?: JobStatus;
  /** Keyset paging: only jobs older than this jid in the list's order (newest first). */
  after?: string;
  /** Functions left out (`list_jobs_filter` leaves out `saltutil.find_job`). */
  excludeFunctions?: readonly string[];
  /** Leaves out what Salt's own machinery runs: `saltutil.find_job` and runner jobs (jobledger's). */
  hideInternal?: boolean;
  limit: number;
  offset: number;
}

export interface SqlQuery {
  text: string;
  values: unknown[];
}

/** The columns a list needs, newest first. */
export const LIST_COLUMNS = `jid, fun, arg, tgt, tgt_type, "user", metadata, expected, returned, failed`;

/**
 * One `search_metadata` pair against the metadata Salt finds for a job: the `metadata` column,
 * else (column NULL) the `metadata` of a `__kwarg__` mapping in `arg`. The jsonb containment on
 * `arg` is a cheap filter that keeps the exact check for the few jobs that can match.
 */
function metadataPair(p: Params, key: string, value: unknown): string {
  const k = p.add(key);
  const v = p.add(JSON.stringify(value));
  const kwarg = p.add(JSON.stringify([{ __kwarg__: true, metadata: { [key]: value } }]));
  return `((metadata -> ${k}::text) = ${v}::jsonb OR (metadata IS NULL AND jsonb_typeof(arg) = 'array' AND arg @> ${kwarg}::jsonb
  AND (SELECT a->'metadata' FROM jsonb_array_elements(arg) AS a WHERE a->'__kwarg__' = 'true'::jsonb AND a ? 'metadata' LIMIT 1) -> ${k}::text = ${v}::jsonb))`;
}

/** Target elements as text: a string target, or each element of a list target. */
const TARGET_ELEMENTS = `jsonb_array_elements_text(CASE jsonb_typeof(tgt) WHEN 'array' THEN tgt WHEN 'string' THEN jsonb_build_array(tgt) ELSE '[]'::jsonb END)`;

/** Microseconds → the `timestamptz` literal of the millisecond it falls in (`start_time` has ms precision). */
function msFloorIso(micros: bigint): string {
  const ms = micros >= 0n ? micros / 1000n : (micros - 999n) / 1000n;
  return new Date(Number(ms)).toISOString();
}

/** Clamps to the range a 20-digit jid can express. */
function jidBound(micros: bigint): string {
  const min = -62_135_596_800_000_000n; // 0001-01-01
  const max = 253_402_300_799_999_999n; // 9999-12-31T23:59:59.999999
  return microsToJid(micros < min ? min : micros > max ? max : micros);
}

class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

function globPredicate(column: string, g: SqlGlob, p: Params): string {
  switch (g.kind) {
    case 'exact':
      return `${column} = ${p.add(g.value)}`;
    case 'prefix':
      return g.like === '%' ? 'TRUE' : `${column} LIKE ${p.add(g.like)}`;
    case 'regex':
      return `${column} ~ ${p.add(g.regex)}`;
    case 'never':
      return 'FALSE';
  }
}

function anyOf(parts: string[]): string {
  if (parts.length === 0) return 'FALSE';
  return parts.length === 1 ? parts[0]! : `(${parts.join(' OR ')})`;
}

/** The WHERE conditions for Salt's filters (an empty list: every job). */
export function listJobsConditions(f: NormalisedFilters, p: Params, excludeFunctions: readonly string[] = []): string[] {
  const where: string[] = [];
  if (f.metadata !== undefined) {
    if (f.metadata === null || Object.keys(f.metadata).length === 0) where.push('FALSE');
    else {
      const pairs = Object.entries(f.metadata).map(([k, v]) => metadataPair(p, k, v));
      where.push(anyOf(pairs));
    }
  }
  if (f.targets !== undefined) {
    const exact: string[] = [];
    const globs: string[] = [];
    for (const t of f.targets) {
      const g = globToSql(t);
      if (g.kind === 'exact') exact.push(`tgt @> ${p.add(JSON.stringify(g.value))}::jsonb`);
      else if (g.kind !== 'never') globs.push(globPredicate('t.v', g, p));
    }
    const parts = [...exact];
    if (globs.length > 0) parts.push(`EXISTS (SELECT 1 FROM ${TARGET_ELEMENTS} AS t(v) WHERE ${anyOf(globs)})`);
    where.push(anyOf(parts));
  }
  if (f.functions !== undefined) where.push(anyOf(f.functions.map((fn) => globPredicate('fun', globToSql(fn), p))));
  if (f.startMicros !== undefined) {
    where.push(`start_time >= ${p.add(msFloorIso(f.startMicros))}::timestamptz`);
    where.push(`jid COLLATE "C" >= ${p.add(jidBound(f.startMicros))}`);
  }
  if (f.endMicros !== undefined) {
    where.push(`start_time <= ${p.add(msFloorIso(f.endMicros))}::timestamptz`);
    // Every jid of that microsecond, unique-jid suffixes included.
    where.push(`jid COLLATE "C" < ${p.add(jidBound(f.endMicros + 1n))}`);
  }
  if (excludeFunctions.length > 0) where.push(`fun <> ALL(${p.add(excludeFunctions)}::text[])`);
  return where;
}

const RUNNING_PROC = `EXISTS (SELECT 1 FROM procs WHERE procs.jid = jobs.jid AND procs.state = 'running')`;

/**
 * A job's state from its counters: failed (an agent returned success false), succeeded (every
 * expected agent returned, none failed), running (agents still out, one of them running it),
 * no-return (agents still out, none running it).
 */
export function statusCondition(status: JobStatus): string {
  switch (status) {
    case 'failed':
      return 'failed > 0';
    case 'succeeded':
      return 'failed = 0 AND returned >= expected';
    case 'running':
      return `failed = 0 AND returned < expected AND ${RUNNING_PROC}`;
    case 'no-return':
      return `failed = 0 AND returned < expected AND NOT ${RUNNING_PROC}`;
  }
}

/** The page of jobs matching `q`, newest first (in the order of `idx_jobs_start_time`, NULLS LAST included). */
export function listJobsSql(q: ListJobsQuery): SqlQuery {
  const p = new Params();
  const where = listJobsConditions(q.filters, p, q.excludeFunctions);
  if (q.users !== undefined) where.push(anyOf(q.users.map((u) => globPredicate('"user"', globToSql(u), p))));
  if (q.status !== undefined) where.push(statusCondition(q.status));
  if (q.hideInternal === true) where.push(`fun <> 'saltutil.find_job' AND fun NOT LIKE 'runner.%'`);
  // A row comparison in the index's order: the page starts right after the given job.
  if (q.after !== undefined) where.push(`(start_time, jid) < (SELECT start_time, jid FROM jobs WHERE jid = ${p.add(q.after)})`);
  const text =
    `SELECT ${LIST_COLUMNS} FROM jobs` +
    (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY start_time DESC NULLS LAST, jid DESC NULLS LAST LIMIT ${p.add(q.limit)} OFFSET ${p.add(q.offset)}`;
  return { text, values: p.values };
}

/** A row of `LIST_COLUMNS` as the load `format_job_instance` reads. */
export interface ListRow {
  jid: string;
  fun: string;
  arg: unknown;
  tgt: unknown;
  tgt_type: string;
  user: string;
  metadata: unknown;
  expected?: number;
  returned?: number;
  failed?: number;
}

export function rowLoad(r: ListRow): Record<string, unknown> {
  const load: Record<string, unknown> = { fun: r.fun, arg: r.arg, tgt: r.tgt, tgt_type: r.tgt_type, user: r.user };
  if (r.metadata !== null && r.metadata !== undefined) load.metadata = r.metadata;
  return load;
}
