import type pg from 'pg';
import { microsToJid } from '@jobledger/core';
import { ConfigError, intEnv, type Logger, sleepUnlessAborted } from '@jobledger/runtime';

/**
 * Salt's job cleaning (`clean_old_jobs`, reference §5 and §6), applied by the projector to the
 * read models every `loop_interval` seconds. The stream is never touched: what is cleaned here
 * can always be rebuilt by replaying it.
 *
 * A job is old when its start time — the time in its jid, `jobs.start_time` — is older than
 * the cut-off `now() - keep_jobs_seconds`. Unlike pgjsonb, which goes by the returns'
 * `alter_time`, a job is cleaned as a whole: its `jobs`, `jids`, `salt_returns`, `salt_events`
 * (the events tagged `salt/job/<jid>/…` or `salt/run/<jid>/…`) and `procs` rows, a job
 * without returns included. With `archive_jobs` the rows are moved to the `*_archive` tables
 * (procs have no archive: they are deleted), else deleted. Events that belong to no job
 * (`minion_start`, …) are judged by their `alter_time`, as Salt does.
 *
 * Bounded work: jids are taken in jid order, at most `batch` (5000) per transaction, and each
 * table is moved with one `WITH moved AS (DELETE … WHERE jid = ANY(…) RETURNING …) INSERT INTO
 * <t>_archive SELECT … FROM moved`, so exactly the rows deleted are archived, whatever commits
 * meanwhile.
 *
 * Concurrency with the projector: every cleaning transaction first locks the projector's
 * checkpoint row (`SELECT … FOR UPDATE`), which every projector batch also locks first; the two
 * never interleave, so nobody ever sees a job half moved, and they cannot deadlock. The rule
 * for an event of a job already cleaned (a late return, a `proc.ended`): the projector applies
 * it as usual — for a return, a placeholder `jobs` row (no `published_seq`) and the
 * `salt_returns` row — and since its jid is older than the cut-off, the next pass cleans it
 * too; with `archive_jobs` a placeholder's counters (`returned`, `failed`, `end_time`) are
 * added to the job's archived row instead of archiving a second row for the jid.
 *
 * Every transaction that removes something records it in `retention_log`, in the same
 * transaction: the checkpoint's sequence read under its lock, whether rows were archived, the
 * jids whose rows went and the ids of the `salt_events` rows that went. Because the lock
 * orders it between two projector batches, the removal happened exactly after the message at
 * that sequence was applied, and removed exactly the rows of those jids (and those events)
 * that existed then. A rebuild from the stream (`replay.ts`, `audit verify`) applies the same
 * removals at the same sequence with `applyRemoval` — the same statements — and so ends with
 * the same rows in every table, archives included. That is what makes a cleaned job not a
 * difference in `audit verify`, without trusting that the missing rows are the ones retention
 * was allowed to remove: a row missing for any other reason is still reported.
 */

/** Salt's `keep_jobs_seconds`, `archive_jobs` and `loop_interval`. */
export interface RetentionConfig {
  /** Jobs older than this are cleaned (`JOBLEDGER_KEEP_JOBS_SECONDS`, default 86400; 0 disables). */
  keepJobsSeconds: number;
  /** The deprecated `JOBLEDGER_KEEP_JOBS` (hours), when it gave `keepJobsSeconds`. */
  fromKeepJobsHours?: number;
  /** Move old rows to the `*_archive` tables instead of deleting them (`JOBLEDGER_ARCHIVE_JOBS`, default false). */
  archiveJobs: boolean;
  /** Seconds between two cleaning passes (`JOBLEDGER_LOOP_INTERVAL`, default 60). */
  loopIntervalSeconds: number;
}

const KEEP_JOBS_SECONDS_DEFAULT = 86_400;
const KEEP_JOBS_HOURS_DEFAULT = 24;
/** setTimeout's limit, in seconds. */
const MAX_LOOP_INTERVAL = 2_147_483;
/** Jids (or events without a job) per transaction. */
export const RETENTION_BATCH = 5_000;
/** Longer than any job could have been kept: 300 years. */
const MAX_KEEP_SECONDS = 300 * 365 * 86_400;

function booleanEnv(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  if (/^(true|yes|on|1)$/i.test(v)) return true;
  if (/^(false|no|off|0)$/i.test(v)) return false;
  throw new ConfigError(`${name} must be true or false, got '${v}'`);
}

/**
 * The retention settings from the environment. As Salt's `get_keep_jobs_seconds`: the
 * deprecated `JOBLEDGER_KEEP_JOBS` (hours) is used only when `JOBLEDGER_KEEP_JOBS_SECONDS` is
 * still 86400 and `JOBLEDGER_KEEP_JOBS` is not 24.
 */
export function loadRetentionConfig(env: NodeJS.ProcessEnv): RetentionConfig {
  let keepJobsSeconds = intEnv(env, 'JOBLEDGER_KEEP_JOBS_SECONDS', KEEP_JOBS_SECONDS_DEFAULT);
  if (!Number.isSafeInteger(keepJobsSeconds) || keepJobsSeconds < 0) {
    throw new ConfigError(
      `JOBLEDGER_KEEP_JOBS_SECONDS must be a whole number of seconds (0 keeps jobs for ever), got '${env.JOBLEDGER_KEEP_JOBS_SECONDS}'`,
    );
  }
  const keepJobsHours = intEnv(env, 'JOBLEDGER_KEEP_JOBS', KEEP_JOBS_HOURS_DEFAULT);
  if (keepJobsHours < 0 || !Number.isSafeInteger(Math.round(keepJobsHours * 3600))) {
    throw new ConfigError(`JOBLEDGER_KEEP_JOBS must be a number of hours (0 keeps jobs for ever), got '${env.JOBLEDGER_KEEP_JOBS}'`);
  }
  let fromKeepJobsHours: number | undefined;
  if (keepJobsHours !== KEEP_JOBS_HOURS_DEFAULT && keepJobsSeconds === KEEP_JOBS_SECONDS_DEFAULT) {
    keepJobsSeconds = Math.round(keepJobsHours * 3600);
    fromKeepJobsHours = keepJobsHours;
  }
  const loopIntervalSeconds = intEnv(env, 'JOBLEDGER_LOOP_INTERVAL', 60);
  if (!(loopIntervalSeconds > 0 && loopIntervalSeconds <= MAX_LOOP_INTERVAL)) {
    throw new ConfigError(
      `JOBLEDGER_LOOP_INTERVAL must be a number of seconds above 0 and at most ${MAX_LOOP_INTERVAL}, got '${env.JOBLEDGER_LOOP_INTERVAL}'`,
    );
  }
  return {
    keepJobsSeconds,
    ...(fromKeepJobsHours === undefined ? {} : { fromKeepJobsHours }),
    archiveJobs: booleanEnv(env, 'JOBLEDGER_ARCHIVE_JOBS', false),
    loopIntervalSeconds,
  };
}

export interface CleanOptions {
  /** Jobs whose start time is older than `now() - keepJobsSeconds` are cleaned; must be > 0. */
  keepJobsSeconds: number;
  /** Move to the `*_archive` tables instead of deleting. */
  archive: boolean;
  /** Jids per transaction, and events per transaction for events of no job (default 5000). */
  batch?: number;
  /** The projector checkpoint row each transaction locks first, to never interleave with a projector batch. */
  checkpoint?: string;
  /** Stops between two transactions. */
  signal?: AbortSignal;
  /** Called between a batch's lookups and its transaction: a seam for tests to race the projector. */
  beforeTransaction?: () => Promise<void>;
}

export interface CleanResult {
  /** `now() - keepJobsSeconds` on the database, to the millisecond. */
  cutoff: Date;
  archived: boolean;
  /** Rows moved (archive) or deleted, per table. */
  jobs: number;
  jids: number;
  returns: number;
  events: number;
  procs: number;
  transactions: number;
  /** The longest transaction, in ms: the longest a projector batch may have waited. */
  longestTransactionMs: number;
  /** False when stopped by `signal` before the end. */
  complete: boolean;
  ms: number;
}

// ---------------------------------------------------------------------------------------------
// SQL. `$1` is always the batch's jids (text[]) in the per-table statements.

const JOBS_COLUMNS =
  'jid, fun, arg, tgt, tgt_type, "user", metadata, minions, missing, expected, returned, failed, start_time, end_time, published_seq';
const RETURNS_COLUMNS = 'fun, jid, "return", id, success, full_ret, alter_time';
const EVENTS_COLUMNS = 'id, tag, data, alter_time, master_id';

/**
 * The next jids to clean after `$3`, in jid order, at most `$4`: old jobs (start time before
 * `$1`; for a jid, start time < cut-off ⇔ jid < the cut-off's jid `$2`, which bounds the index
 * scans), and old jids found only in jids, salt_returns or procs (left by an event that came
 * after its job was cleaned).
 */
const CANDIDATES = `SELECT jid FROM (
  (SELECT jid FROM jobs WHERE jid > $3 AND jid < $2 AND start_time < $1 ORDER BY jid LIMIT $4)
  UNION (SELECT jid FROM jids WHERE jid > $3 AND jid < $2 AND jid ~ '^[0-9]{20}' ORDER BY jid LIMIT $4)
  UNION (SELECT DISTINCT jid FROM salt_returns WHERE jid > $3 AND jid < $2 AND jid ~ '^[0-9]{20}' ORDER BY jid LIMIT $4)
  UNION (SELECT DISTINCT jid FROM procs WHERE jid > $3 AND jid < $2 AND jid ~ '^[0-9]{20}' ORDER BY jid LIMIT $4)
) AS c ORDER BY jid LIMIT $4`;

/**
 * The events of the jids `$1`, looked up before the transaction (it takes about 0.15 ms a jid
 * on a million events, too long to hold the checkpoint lock for): found through the GIN index
 * on `data` (every job event carries its jid at the top of its data) and kept only when the
 * tag names the jid too; with the highest event id at that moment, in the same snapshot.
 */
const JOB_EVENTS_LOOKUP = `SELECT (SELECT coalesce(max(id), 0) FROM salt_events)::text AS max_id,
  ARRAY(SELECT e.id FROM unnest($1::text[]) AS j(jid)
    CROSS JOIN LATERAL (SELECT id, tag FROM salt_events WHERE data @> jsonb_build_object('jid', j.jid)) AS e
    WHERE split_part(e.tag, '/', 1) = 'salt' AND split_part(e.tag, '/', 2) IN ('job', 'run') AND split_part(e.tag, '/', 3) = j.jid
  )::text[] AS ids`;

/**
 * In the transaction: the events looked up (`$2`), and the jids' events projected since
 * (`$1`, above the highest id `$3` seen then: the projector writes events in stream order, so
 * what it committed since has higher ids). Both through the unique index on `id` (as a
 * UNION: written with OR, the planner scans the whole table).
 */
const JOB_EVENTS = `id IN (
  SELECT unnest($2::bigint[])
  UNION ALL
  SELECT id FROM salt_events
  WHERE id > $3::bigint AND split_part(tag, '/', 3) = ANY($1::text[]) AND split_part(tag, '/', 1) = 'salt' AND split_part(tag, '/', 2) IN ('job', 'run'))`;

const ARCHIVE = {
  // A placeholder (a late return's row, no published_seq) adds its counters to the archived row.
  jobs: `WITH moved AS (DELETE FROM jobs WHERE jid = ANY($1::text[]) RETURNING ${JOBS_COLUMNS}),
merged AS (
  UPDATE jobs_archive a SET returned = a.returned + m.returned, failed = a.failed + m.failed, end_time = greatest(a.end_time, m.end_time)
  FROM moved m WHERE m.published_seq IS NULL AND a.jid = m.jid
  RETURNING a.jid),
inserted AS (
  INSERT INTO jobs_archive (${JOBS_COLUMNS})
  SELECT ${JOBS_COLUMNS} FROM moved m WHERE NOT EXISTS (SELECT 1 FROM merged WHERE merged.jid = m.jid)
  RETURNING 1)
SELECT count(*)::int AS n FROM moved`,
  jids: `WITH moved AS (DELETE FROM jids WHERE jid = ANY($1::text[]) RETURNING jid, load),
inserted AS (INSERT INTO jids_archive (jid, load) SELECT jid, load FROM moved RETURNING 1)
SELECT count(*)::int AS n FROM inserted`,
  returns: `WITH moved AS (DELETE FROM salt_returns WHERE jid = ANY($1::text[]) RETURNING ${RETURNS_COLUMNS}),
inserted AS (INSERT INTO salt_returns_archive (${RETURNS_COLUMNS}) SELECT ${RETURNS_COLUMNS} FROM moved RETURNING 1)
SELECT count(*)::int AS n FROM inserted`,
  events: `WITH moved AS (DELETE FROM salt_events WHERE ${JOB_EVENTS} RETURNING ${EVENTS_COLUMNS}),
inserted AS (INSERT INTO salt_events_archive (${EVENTS_COLUMNS}) SELECT ${EVENTS_COLUMNS} FROM moved RETURNING 1)
SELECT id::text FROM moved`,
  eventsById: `WITH moved AS (DELETE FROM salt_events WHERE id = ANY($1::bigint[]) RETURNING ${EVENTS_COLUMNS}),
inserted AS (INSERT INTO salt_events_archive (${EVENTS_COLUMNS}) SELECT ${EVENTS_COLUMNS} FROM moved RETURNING 1)
SELECT id::text FROM moved`,
} as const;

const DELETE = {
  jobs: 'DELETE FROM jobs WHERE jid = ANY($1::text[])',
  jids: 'DELETE FROM jids WHERE jid = ANY($1::text[])',
  returns: 'DELETE FROM salt_returns WHERE jid = ANY($1::text[])',
  events: `DELETE FROM salt_events WHERE ${JOB_EVENTS} RETURNING id::text`,
  eventsById: 'DELETE FROM salt_events WHERE id = ANY($1::bigint[]) RETURNING id::text',
} as const;

const PROCS = 'DELETE FROM procs WHERE jid = ANY($1::text[])';

const LOG = `INSERT INTO retention_log (name, seq, part, archived, jids, event_ids, keep_jobs_seconds)
SELECT $1, $2::bigint, coalesce(max(part), 0) + 1, $3, $4::text[], $5::bigint[], $6::integer FROM retention_log WHERE name = $1 AND seq = $2::bigint`;

/** One recorded removal (a `retention_log` row). */
export interface Removal {
  name: string;
  /** The checkpoint it ran at: it follows the message with this sequence. */
  seq: number;
  part: number;
  archived: boolean;
  jids: string[];
  eventIds: number[];
  /** When it ran (kept as it is by a rebuild). */
  removedAt: Date;
  /** The `keep_jobs_seconds` it ran with (null: recorded before this was kept). */
  keepJobsSeconds: number | null;
}

/** The recorded removals of checkpoint `name` from `from` to `upTo`, in the order they ran. */
export async function readRemovals(
  db: pg.Pool | pg.ClientBase,
  name: string,
  from = 0,
  upTo = Number.MAX_SAFE_INTEGER,
): Promise<Removal[]> {
  const { rows } = await db.query<{
    seq: string;
    part: number;
    archived: boolean;
    jids: string[];
    event_ids: string[];
    removed_at: Date;
    keep_jobs_seconds: number | null;
  }>(
    `SELECT seq, part, archived, jids, event_ids::text[] AS event_ids, removed_at, keep_jobs_seconds
     FROM retention_log WHERE name = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq, part`,
    [name, from, upTo],
  );
  return rows.map((r) => ({
    name,
    seq: Number(r.seq),
    part: r.part,
    archived: r.archived,
    jids: r.jids,
    eventIds: r.event_ids.map(Number),
    removedAt: r.removed_at,
    keepJobsSeconds: r.keep_jobs_seconds,
  }));
}

/**
 * Applies a recorded removal again (in a rebuild, in the caller's transaction, right after the
 * message at `removal.seq`): the same statements as the pass that recorded it, the job events
 * by their recorded ids; and records it in this schema's `retention_log` too.
 */
export async function applyRemoval(client: pg.ClientBase, removal: Removal): Promise<void> {
  const { archived, jids } = removal;
  if (jids.length > 0) {
    await count(client, archived, ARCHIVE.jobs, DELETE.jobs, [jids]);
    await count(client, archived, ARCHIVE.jids, DELETE.jids, [jids]);
    await count(client, archived, ARCHIVE.returns, DELETE.returns, [jids]);
    await client.query(PROCS, [jids]);
  }
  if (removal.eventIds.length > 0) {
    await client.query(archived ? ARCHIVE.eventsById : DELETE.eventsById, [removal.eventIds.map(String)]);
  }
  await client.query(
    'INSERT INTO retention_log (name, seq, part, archived, jids, event_ids, removed_at, keep_jobs_seconds) VALUES ($1, $2, $3, $4, $5::text[], $6::bigint[], $7, $8)',
    [removal.name, removal.seq, removal.part, archived, jids, removal.eventIds.map(String), removal.removedAt, removal.keepJobsSeconds],
  );
}

/** The jid in a job event's tag (`salt/job/<jid>/…`, `salt/run/<jid>/…`), if it is one. */
export function tagJid(tag: string): string | undefined {
  const m = /^salt\/(?:job|run)\/([^/]+)\//.exec(tag);
  return m && /^\d{20}/.test(m[1]!) ? m[1] : undefined;
}

async function transaction<T>(
  pool: pg.Pool,
  checkpoint: string | undefined,
  keepJobsSeconds: number,
  result: CleanResult,
  body: (c: pg.PoolClient, log: (jids: string[], eventIds: string[], archived: boolean) => Promise<void>) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let failed = false;
  const started = Date.now();
  try {
    await client.query('BEGIN');
    let seq: string | undefined;
    if (checkpoint !== undefined) {
      // Twice, as apply.ts's lockCheckpoint: the second select locks the row of the tables in
      // use when the first one waited through a `replay --swap`.
      const select = 'SELECT last_seq::text FROM projector_checkpoint WHERE name = $1 FOR UPDATE';
      await client.query(select, [checkpoint]);
      seq = (await client.query<{ last_seq: string }>(select, [checkpoint])).rows[0]?.last_seq ?? '0';
    }
    const log = async (jids: string[], eventIds: string[], archived: boolean) => {
      if (checkpoint === undefined || seq === undefined || (jids.length === 0 && eventIds.length === 0)) return;
      await client.query(LOG, [checkpoint, seq, archived, jids, eventIds, keepJobsSeconds]);
    };
    const value = await body(client, log);
    await client.query('COMMIT');
    result.transactions++;
    result.longestTransactionMs = Math.max(result.longestTransactionMs, Date.now() - started);
    return value;
  } catch (err) {
    failed = true;
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    // After a failure the connection may be broken: it is not given back to the pool.
    client.release(failed);
  }
}

async function count(client: pg.ClientBase, archive: boolean, archiveSql: string, deleteSql: string, values: unknown[]): Promise<number> {
  if (archive) return (await client.query<{ n: number }>(archiveSql, values)).rows[0]?.n ?? 0;
  return (await client.query(deleteSql, values)).rowCount ?? 0;
}

/**
 * One cleaning pass: every job older than the cut-off, then the events of no job older than
 * it. Applying it twice in a row changes nothing the second time.
 */
export async function cleanOldJobs(pool: pg.Pool, opts: CleanOptions): Promise<CleanResult> {
  const started = Date.now();
  if (!(opts.keepJobsSeconds > 0)) throw new RangeError('keepJobsSeconds must be above 0');
  const batch = opts.batch ?? RETENTION_BATCH;
  const archive = opts.archive;
  const { rows } = await pool.query<{ cutoff: Date }>("SELECT date_trunc('milliseconds', now() - make_interval(secs => $1)) AS cutoff", [
    Math.min(opts.keepJobsSeconds, MAX_KEEP_SECONDS),
  ]);
  const cutoff = rows[0]!.cutoff;
  const cutJid = microsToJid(BigInt(cutoff.getTime()) * 1000n);
  const result: CleanResult = {
    cutoff,
    archived: archive,
    jobs: 0,
    jids: 0,
    returns: 0,
    events: 0,
    procs: 0,
    transactions: 0,
    longestTransactionMs: 0,
    complete: false,
    ms: 0,
  };
  const stopped = () => opts.signal?.aborted === true;

  // Jobs, by jid.
  let cursor = '';
  while (!stopped()) {
    const jids = (await pool.query<{ jid: string }>(CANDIDATES, [cutoff, cutJid, cursor, batch])).rows.map((r) => r.jid);
    if (jids.length === 0) break;
    const events = (await pool.query<{ max_id: string; ids: string[] }>(JOB_EVENTS_LOOKUP, [jids])).rows[0]!;
    await opts.beforeTransaction?.();
    await transaction(pool, opts.checkpoint, opts.keepJobsSeconds, result, async (c, log) => {
      const values = [jids];
      result.jobs += await count(c, archive, ARCHIVE.jobs, DELETE.jobs, values);
      result.jids += await count(c, archive, ARCHIVE.jids, DELETE.jids, values);
      result.returns += await count(c, archive, ARCHIVE.returns, DELETE.returns, values);
      const eventIds = (
        await c.query<{ id: string }>(archive ? ARCHIVE.events : DELETE.events, [jids, events.ids, events.max_id])
      ).rows.map((r) => r.id);
      result.events += eventIds.length;
      result.procs += (await c.query(PROCS, values)).rowCount ?? 0;
      await log(jids, eventIds, archive);
    });
    cursor = jids[jids.length - 1]!;
    if (jids.length < batch) break;
  }

  // Events of no job, by alter_time, in id (= stream) order. The projector writes them in
  // stream order with alter_time = the stream's time, so alter_time only grows with the id: the walk stops
  // at the first event that is not old. A job event met here (one whose data lacks its jid)
  // goes by its jid's time.
  let lastId = '0';
  let young = false;
  // A small first page: usually the first event is already young.
  let page = Math.min(100, batch);
  while (!young && !stopped()) {
    const { rows: events } = await pool.query<{ id: string; tag: string; old: boolean | null }>(
      'SELECT id, tag, alter_time < $1 AS old FROM salt_events WHERE id > $2::bigint ORDER BY id LIMIT $3',
      [cutoff, lastId, page],
    );
    const ids: string[] = [];
    for (const e of events) {
      if (e.old === false) {
        young = true;
        break;
      }
      lastId = e.id;
      const jid = tagJid(e.tag);
      if (jid !== undefined ? jid < cutJid : e.old === true) ids.push(e.id);
    }
    if (ids.length > 0) {
      result.events += await transaction(pool, opts.checkpoint, opts.keepJobsSeconds, result, async (c, log) => {
        const removed = (await c.query<{ id: string }>(archive ? ARCHIVE.eventsById : DELETE.eventsById, [ids])).rows.map((r) => r.id);
        await log([], removed, archive);
        return removed.length;
      });
    }
    if (events.length < page) break;
    page = batch;
  }

  result.complete = !stopped();
  result.ms = Date.now() - started;
  return result;
}

export interface Retention {
  /** Lets the pass in flight finish its transaction, then stops. Idempotent. */
  stop(): Promise<void>;
}

const sleep = sleepUnlessAborted;

/**
 * Runs a cleaning pass every `loopIntervalSeconds` (the first one interval after the start, as
 * Salt's maintenance loop does) until stopped; nothing when `keepJobsSeconds` is 0. A failed
 * pass is logged and tried again at the next interval.
 */
export function startRetention(pool: pg.Pool, config: RetentionConfig, logger: Logger, opts: { checkpoint?: string } = {}): Retention {
  if (config.keepJobsSeconds <= 0) {
    logger.info('job retention disabled (JOBLEDGER_KEEP_JOBS_SECONDS=0): jobs are kept for ever');
    return { stop: async () => undefined };
  }
  if (config.fromKeepJobsHours !== undefined) {
    logger.warn(
      { keepJobs: config.fromKeepJobsHours, keepJobsSeconds: config.keepJobsSeconds },
      'JOBLEDGER_KEEP_JOBS (hours) is deprecated: set JOBLEDGER_KEEP_JOBS_SECONDS instead',
    );
  }
  logger.info(
    { keepJobsSeconds: config.keepJobsSeconds, archiveJobs: config.archiveJobs, loopIntervalSeconds: config.loopIntervalSeconds },
    'job retention scheduled',
  );
  const abort = new AbortController();
  const loop = (async () => {
    while (!abort.signal.aborted) {
      await sleep(config.loopIntervalSeconds * 1000, abort.signal);
      if (abort.signal.aborted) break;
      try {
        const r = await cleanOldJobs(pool, {
          keepJobsSeconds: config.keepJobsSeconds,
          archive: config.archiveJobs,
          checkpoint: opts.checkpoint,
          signal: abort.signal,
        });
        const summary = {
          cutoff: r.cutoff.toISOString(),
          jobs: r.jobs,
          jids: r.jids,
          returns: r.returns,
          events: r.events,
          procs: r.procs,
          transactions: r.transactions,
          longestTransactionMs: r.longestTransactionMs,
          ms: r.ms,
        };
        const changed = r.jobs + r.jids + r.returns + r.events + r.procs > 0;
        if (changed) logger.info(summary, r.archived ? 'old jobs archived' : 'old jobs deleted');
        else logger.debug(summary, 'no old jobs');
      } catch (err) {
        logger.error({ err }, 'job retention pass failed; trying again at the next interval');
      }
    }
  })();
  let stopping: Promise<void> | undefined;
  return {
    stop: () => {
      stopping ??= (async () => {
        abort.abort();
        await loop;
      })();
      return stopping;
    },
  };
}
