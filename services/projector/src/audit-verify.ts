import type pg from 'pg';
import { genJid, jidToMicros, microsToJid, parseSubject, RETURNS_BUCKET, type SignatureTrust } from '@jobledger/core';
import { openDatabase, quoteIdent, type Ledger } from '@jobledger/runtime';
import { readCheckpointChain } from './apply.js';
import { Rebuild, RebuildError, type RebuildProgress } from './rebuild.js';
import { LIVE_SCHEMA } from './replay.js';
import { loadRetentionConfig } from './retention.js';
import { streamBounds } from './stream-cursor.js';
import type { DeadLetter, RawMessage } from './projections.js';

/**
 * `jobledger audit verify`: rebuilds the read models from the stream into a scratch schema
 * (dropped afterwards) up to exactly the live checkpoint, then compares every row of every
 * read model with the live one, and the hash chain the projector stored with its checkpoints
 * with the chain recomputed over the stream.
 *
 * Exactly the live checkpoint, without holding up the projector for long: the rebuild first
 * follows the live checkpoint lock-free until it is less than one batch behind. Then one
 * session locks the live checkpoint row FOR SHARE (the projector's batches and retention's
 * passes lock it FOR UPDATE first, so nothing in the live tables changes while it is held),
 * the rebuild catches up to it (less than a batch), and a second session opens a REPEATABLE
 * READ transaction and reads the checkpoint: its snapshot holds the live tables exactly as they
 * are at that checkpoint, and the rebuild's tables complete. The lock is released then; the
 * retention log is checked and the tables are compared inside that snapshot, with no lock
 * held: the projector waits for the last batch of the catch-up only, never for the comparison.
 * Stored chain values are read a page of sequences at a time and compared as the rebuild goes.
 *
 * Retention: a job retention removed is not a difference. Every retention transaction records
 * what it removed in `retention_log` at the checkpoint it ran at (see retention.ts); the rebuild
 * applies those removals at the same sequence with the same statements, archive or delete, so
 * its tables — archives included — must equal the live ones row for row. The log itself is
 * checked before it is believed (a row written by hand would otherwise hide the rows it names):
 * every jid it names must be older than `removed_at - keep_jobs_seconds` (the projector's
 * setting, from the same environment), every event it names too (by the stream's time of the
 * event, or for a job's event by its jid), and `removed_at` must not be earlier than the
 * stream's time of the message at its sequence (less a few seconds of clock skew between the
 * NATS and PostgreSQL servers) nor later than now. The settings are today's: a removal made
 * under a shorter `keep_jobs_seconds` than today's is reported too. A removal that fails is
 * reported as a difference of `retention_log`. (Removals made before the log existed are not
 * in it: they show as `missing` rows until `replay --swap` rebuilds the live tables once.)
 *
 * Scratch schemas are named `audit_<jid of the start>` and every session of the run carries
 * the application name `jobledger audit verify <schema>`; a run first drops the scratch
 * schemas no session carries the name of (left by a run that was killed).
 */

/** A table compared, with the columns that identify a row in messages. */
interface TableSpec {
  table: string;
  /** Columns that identify a row (a row number among equal keys is added where not unique). */
  keys: string[];
  unique: boolean;
}

export const COMPARED_TABLES: readonly TableSpec[] = [
  { table: 'jids', keys: ['jid'], unique: true },
  { table: 'salt_returns', keys: ['jid', 'id'], unique: false },
  { table: 'salt_events', keys: ['id'], unique: true },
  { table: 'jobs', keys: ['jid'], unique: true },
  { table: 'procs', keys: ['jid', 'id'], unique: true },
  { table: 'agents', keys: ['id'], unique: true },
  { table: 'agent_keys', keys: ['id'], unique: true },
  { table: 'dead_letters', keys: ['seq'], unique: true },
  { table: 'jids_archive', keys: ['jid'], unique: false },
  { table: 'jobs_archive', keys: ['jid'], unique: false },
  { table: 'salt_returns_archive', keys: ['jid', 'id'], unique: false },
  { table: 'salt_events_archive', keys: ['id'], unique: false },
];

export interface RowDifference {
  table: string;
  /** The row's key, e.g. `{jid, id}`; `event` rows also carry the jid of their tag. */
  key: Record<string, string>;
  /**
   * `missing`: the rebuild has it, the live table not; `extra`: the other way; `differs`: both,
   * not equal; `removal`: a `retention_log` row (key `{seq}`) that retention could not have
   * written, `reason` says why; `object`: a large return whose object in `ledger_returns` is
   * missing or altered (key `{seq, jid, id}`), `reason` says which.
   */
  kind: 'missing' | 'extra' | 'differs' | 'removal' | 'object';
  /** The columns that differ (`differs`). */
  columns: string[];
  /** Why a removal is not believed (`removal`). */
  reason?: string;
}

export interface ChainCheck {
  /** Stored chain values compared (per-batch rows and the checkpoint's). */
  checked: number;
  /** Stored values that differ from the recomputed chain. */
  diverging: number;
  /** The first sequence whose stored value differs. */
  first?: { seq: number; stored: string; recomputed: string };
  /** The checkpoint carries no chain (it predates the chain): not verified. */
  unknown: boolean;
}

export interface VerifyReport {
  ok: boolean;
  /** The live checkpoint compared at. */
  seq: number;
  /** Messages replayed. */
  events: number;
  /** Rows in the live tables compared. */
  rows: number;
  /** Differences, at most `limit` of them. */
  differences: RowDifference[];
  /** All differences. */
  differenceCount: number;
  chain: ChainCheck;
  signatures: SignatureReport;
  removals: number;
  ms: number;
}

/** Events of the stream whose signature does not hold (unsigned, unknown signer, bad signature). */
export interface SignatureReport {
  /** False when no master event key was given: signatures were not checked. */
  checked: boolean;
  /** At most `limit` of them, by sequence. */
  problems: { seq: number; subject: string; reason: string }[];
  count: number;
}

export interface VerifyOptions {
  databaseUrl: string;
  ledger: Ledger;
  name: string;
  masterId: string;
  batch?: number;
  /** Most differences listed (default 1000); all are counted. */
  limit?: number;
  onProgress?: (p: RebuildProgress) => void;
  /** Called once the snapshot is taken and the lock released, before the comparison: a seam for tests. */
  afterSnapshot?: () => Promise<void>;
  /** Where the retention settings are read, as the projector does (`JOBLEDGER_KEEP_JOBS_SECONDS`, …); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The master's event key: every event's signature is checked (`signatures` in the report). */
  signatureTrust?: SignatureTrust | undefined;
}

/** `salt_returns: jid 2026… id web1: row differs (return)`. */
export function formatDifference(d: RowDifference): string {
  const key = Object.entries(d.key)
    .map(([k, v]) => `${k} ${v}`)
    .join(' ');
  const what =
    d.kind === 'differs'
      ? `row differs (${d.columns.join(', ')})`
      : d.kind === 'removal' || d.kind === 'object'
        ? (d.reason ?? d.kind)
        : d.kind;
  return `${d.table}: ${key}: ${what}`;
}

const TAG_JID = `substring(x.r->>'tag' from '^salt/(?:job|run)/([0-9]{20}[^/]*)/')`;

/**
 * One table's differences between `live` and `scratch`, the whole row as jsonb (every column),
 * the differing columns named.
 */
function compareSql(spec: TableSpec, live: string, scratch: string): string {
  const keys = spec.keys.map((k) => quoteIdent(k));
  const n = spec.unique ? '1' : `row_number() OVER (PARTITION BY ${keys.join(', ')} ORDER BY to_jsonb(t)::text)`;
  const side = (schema: string) =>
    `SELECT ${keys.map((k) => `t.${k}::text AS ${k}`).join(', ')}, ${n} AS n, to_jsonb(t) AS r FROM ${quoteIdent(schema)}.${quoteIdent(spec.table)} t`;
  const on = [...keys.map((k) => `a.${k} = b.${k}`), 'a.n = b.n'].join(' AND ');
  const isEvent = spec.table === 'salt_events' || spec.table === 'salt_events_archive';
  return `WITH a AS (${side(live)}), b AS (${side(scratch)}),
d AS (
  SELECT ${keys.map((k) => `coalesce(a.${k}, b.${k}) AS ${k}`).join(', ')},
         CASE WHEN a.r IS NULL THEN 'missing' WHEN b.r IS NULL THEN 'extra' ELSE 'differs' END AS kind,
         coalesce(a.r, b.r) AS r,
         ARRAY(SELECT c FROM jsonb_object_keys(coalesce(a.r, '{}'::jsonb) || coalesce(b.r, '{}'::jsonb)) AS c
               WHERE a.r IS NOT NULL AND b.r IS NOT NULL AND (a.r -> c) IS DISTINCT FROM (b.r -> c) ORDER BY c) AS columns
  FROM a FULL JOIN b ON ${on}
  WHERE a.r IS DISTINCT FROM b.r)
SELECT ${keys.map((k) => `x.${k}`).join(', ')}, x.kind, x.columns, ${isEvent ? TAG_JID : 'NULL'} AS tag_jid,
       count(*) OVER ()::int AS total
FROM d x ORDER BY ${keys.map((k) => (spec.table.startsWith('salt_events') && k === '"id"' ? `x.${k}::bigint` : `x.${k}`)).join(', ')} LIMIT $1`;
}

async function compareTables(
  client: pg.ClientBase,
  scratch: string,
  limit: number,
): Promise<{ differences: RowDifference[]; count: number }> {
  const differences: RowDifference[] = [];
  let count = 0;
  for (const spec of COMPARED_TABLES) {
    const { rows } = await client.query<
      Record<string, string | null> & { kind: RowDifference['kind']; columns: string[]; total: number; tag_jid: string | null }
    >(compareSql(spec, LIVE_SCHEMA, scratch), [Math.max(0, limit - differences.length)]);
    if (rows.length > 0) count += rows[0]!.total;
    else if (limit - differences.length <= 0) {
      // Nothing listed any more: still count.
      const { rows: c } = await client.query<{ total: number }>(
        `SELECT count(*)::int AS total FROM (${compareSql(spec, LIVE_SCHEMA, scratch).replace(/ LIMIT \$1$/, '')}) q`,
      );
      count += c[0]?.total ?? 0;
    }
    for (const r of rows) {
      const key: Record<string, string> = {};
      const isEvent = spec.table.startsWith('salt_events');
      if (isEvent) {
        if (r.tag_jid) key.jid = r.tag_jid;
        key.event = String(r.id);
      } else {
        for (const k of spec.keys) key[k] = String(r[k]);
      }
      differences.push({ table: spec.table, key, kind: r.kind, columns: r.columns });
    }
  }
  return { differences, count };
}

async function countRows(client: pg.ClientBase): Promise<number> {
  const parts = COMPARED_TABLES.map((s) => `(SELECT count(*) FROM ${quoteIdent(LIVE_SCHEMA)}.${quoteIdent(s.table)})`);
  const { rows } = await client.query<{ n: string }>(`SELECT (${parts.join(' + ')})::text AS n`);
  return Number(rows[0]?.n ?? 0);
}

/** Sequences of stored chain values held in memory at a time (one page of `projector_chain`). */
const CHAIN_PAGE_SEQS = 10_000;
/** `retention_log` rows read at a time. */
const REMOVALS_PAGE = 500;
/** Longer than any job could have been kept (retention.ts caps `keep_jobs_seconds` the same way). */
const MAX_KEEP_SECONDS = 300 * 365 * 86_400;
const APPLICATION_NAME = 'jobledger audit verify ';
/** How far the PostgreSQL server's clock may be behind the NATS server's (removed_at vs stream times). */
const CLOCK_SKEW_MS = 5_000;

/**
 * The stored chain values (`projector_chain`), read one page of sequences at a time and
 * compared with the recomputed values as the rebuild reaches them (it calls `onChain` in
 * sequence order): only one page is ever in memory.
 */
class ChainComparer {
  readonly result: ChainCheck = { checked: 0, diverging: 0, unknown: false };
  private page = new Map<number, string>();

  /** False when the stream no longer starts at sequence 1: no chain can be recomputed. */
  checkable = true;

  constructor(
    private readonly db: pg.ClientBase,
    private readonly name: string,
  ) {}

  readonly onChain = (seq: number, hash: string): void => {
    const stored = this.page.get(seq);
    if (stored === undefined) return;
    this.page.delete(seq);
    this.check(seq, stored, hash);
  };

  check(seq: number, stored: string, recomputed: string | undefined): void {
    if (!this.checkable) {
      // Not a difference: the messages the chain starts from are gone (an external limit).
      this.result.unknown = true;
      return;
    }
    this.result.checked++;
    if (recomputed === stored) return;
    this.result.diverging++;
    if (this.result.first === undefined || seq < this.result.first.seq)
      this.result.first = { seq, stored, recomputed: recomputed ?? '(none)' };
  }

  /** Reads the stored values of sequences `after` < seq ≤ `upTo`. */
  async load(after: number, upTo: number): Promise<void> {
    this.finish();
    const { rows } = await this.db.query<{ seq: string; hash: string }>(
      `SELECT seq::text, hash FROM ${quoteIdent(LIVE_SCHEMA)}.projector_chain WHERE name = $1 AND seq > $2 AND seq <= $3 ORDER BY seq`,
      [this.name, after, upTo],
    );
    for (const r of rows) this.page.set(Number(r.seq), r.hash);
  }

  /** Stored values the rebuild never reached (a sequence it did not apply): diverging. */
  finish(): void {
    for (const [seq, stored] of [...this.page].sort((a, b) => a[0] - b[0])) this.check(seq, stored, undefined);
    this.page.clear();
  }
}

/** Advances the rebuild to `target` one page of chain values at a time. */
async function advance(rebuild: Rebuild, chain: ChainComparer, target: number): Promise<void> {
  while (rebuild.seq < target) {
    const upTo = Math.min(target, rebuild.seq + CHAIN_PAGE_SEQS);
    await chain.load(rebuild.seq, upTo);
    await rebuild.advanceTo(upTo);
    chain.finish();
  }
}

/** `url` with the libpq `application_name` set (unchanged when it is not a URL). */
function withApplicationName(url: string, name: string): string {
  try {
    const u = new URL(url);
    u.searchParams.set('application_name', name);
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * Drops the scratch schemas of runs that are gone: named `audit_<20 digits>`, more than a
 * minute old by the time in their name, and carried by no session's application name (a run
 * connects its session, named after its schema, before it creates the schema, and holds it
 * to the end). Schemas it may not drop are left.
 */
export async function dropStaleScratchSchemas(db: pg.ClientBase | pg.Pool): Promise<string[]> {
  const cut = microsToJid(BigInt(Date.now() - 60_000) * 1000n);
  const { rows } = await db.query<{ nspname: string }>(
    `SELECT n.nspname FROM pg_namespace n
     WHERE n.nspname ~ '^audit_[0-9]{20}$' AND substr(n.nspname, 7) < $1
       AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.application_name = $2 || n.nspname)
     ORDER BY 1`,
    [cut, APPLICATION_NAME],
  );
  const dropped: string[] = [];
  for (const r of rows) {
    try {
      await db.query(`DROP SCHEMA IF EXISTS ${quoteIdent(r.nspname)} CASCADE`);
      dropped.push(r.nspname);
    } catch {
      // Not ours to drop (another owner), or dropped meanwhile.
    }
  }
  return dropped;
}

/** The stream's message at `seq` (time and subject), null when it holds none. */
async function streamMessage(ledger: Ledger, seq: number): Promise<{ time: Date; subject: string } | null> {
  try {
    const m = await ledger.jsm.streams.getMessage(ledger.stream, { seq });
    return m === null ? null : { time: m.time, subject: m.subject };
  } catch (err) {
    if ((err as { code?: unknown })?.code === 404 || /no message found/i.test(String((err as Error)?.message))) return null;
    throw err;
  }
}

const JOB_SUBJECT = /^ledger\.(?:job|run)\.([^.]+)\./;

/** A jid older than `cutMicros` (a 20-digit jid whose time is before it). */
function oldJid(jid: string, cutMicros: bigint): boolean {
  return /^[0-9]{20}/.test(jid) && jidToMicros(jid) < cutMicros;
}

/**
 * Checks every `retention_log` row up to `upTo` before the rebuild's removals are believed:
 * what retention.ts could have written, with `keepJobsSeconds`. Read in pages, in `db`'s
 * snapshot; one direct read of the stream per row (plus one per event of an old job that is
 * itself newer than the cut-off).
 */
async function checkRemovals(
  db: pg.ClientBase,
  ledger: Ledger,
  name: string,
  upTo: number,
  keepJobsSeconds: number,
  report: (seq: number, reason: string) => void,
): Promise<number> {
  let cursor = { seq: -1, part: 0 };
  let checked = 0;
  const times = new Map<number, { time: Date; subject: string } | null>();
  const message = async (seq: number) => {
    if (!times.has(seq)) {
      if (times.size > 1_000) times.clear();
      times.set(seq, await streamMessage(ledger, seq));
    }
    return times.get(seq)!;
  };
  for (;;) {
    const { rows } = await db.query<{
      seq: string;
      part: number;
      jids: string[];
      event_ids: string[];
      removed_at: Date;
      future: boolean;
      keep_jobs_seconds: number | null;
    }>(
      `SELECT seq::text, part, jids, event_ids::text[] AS event_ids, removed_at, removed_at > now() AS future, keep_jobs_seconds
       FROM ${quoteIdent(LIVE_SCHEMA)}.retention_log
       WHERE name = $1 AND seq <= $2 AND (seq, part) > ($3::bigint, $4::int) ORDER BY seq, part LIMIT $5`,
      [name, upTo, cursor.seq, cursor.part, REMOVALS_PAGE],
    );
    for (const r of rows) {
      checked++;
      const seq = Number(r.seq);
      cursor = { seq, part: r.part };
      const at = r.removed_at;
      // Each removal is judged by the retention it ran with (recorded since it is kept), else by
      // today's setting.
      const keep = Math.min(r.keep_jobs_seconds ?? keepJobsSeconds, MAX_KEEP_SECONDS);
      if (keep <= 0) {
        report(seq, 'removal recorded while job retention is disabled (keep_jobs_seconds 0)');
        continue;
      }
      if (r.future) report(seq, `removed at ${at.toISOString()}, a time still to come`);
      if (seq > 0) {
        const m = await message(seq);
        if (m === null) report(seq, `the stream holds no message at sequence ${seq}`);
        else if (at.getTime() + CLOCK_SKEW_MS < m.time.getTime())
          report(seq, `removed at ${at.toISOString()}, before the message at its sequence was stored (${m.time.toISOString()})`);
      }
      const cutMs = at.getTime() - keep * 1000;
      const cutMicros = BigInt(cutMs) * 1000n;
      for (const jid of r.jids) if (!oldJid(jid, cutMicros)) report(seq, `jid ${jid} removed before it was old`);
      // The stream's times grow with the sequence: once one event is older than the cut-off, so
      // are all below it.
      const ids = r.event_ids.map(Number).sort((a, b) => b - a);
      for (const id of ids) {
        const m = await message(id);
        if (m === null) {
          report(seq, `event ${id} removed, but the stream holds no message at that sequence`);
          continue;
        }
        if (m.time.getTime() < cutMs) break;
        const jid = JOB_SUBJECT.exec(m.subject)?.[1];
        if (jid === undefined || !oldJid(jid, cutMicros)) report(seq, `event ${id} removed before it was old`);
      }
    }
    if (rows.length < REMOVALS_PAGE) return checked;
  }
}

/**
 * The snapshot. Session `lock` takes the live checkpoint row FOR SHARE (twice, as apply.ts's
 * lockCheckpoint, for a swap that committed while it waited) and reads it; the rebuild catches
 * up to it (`catchUp`: less than a batch, it followed the checkpoint lock-free before); then
 * session `snap` opens a REPEATABLE READ transaction and reads the checkpoint — its snapshot is
 * taken then, while nobody can change the live tables, and after the rebuild's last commit —
 * and the lock is released.
 */
async function takeSnapshot(
  pool: pg.Pool,
  snap: pg.ClientBase,
  name: string,
  catchUp: (seq: number) => Promise<void>,
): Promise<{ seq: number; storedHead: string | null; found: boolean }> {
  const lock = await pool.connect();
  let failed = false;
  try {
    await lock.query('BEGIN');
    const select = `SELECT last_seq FROM ${quoteIdent(LIVE_SCHEMA)}.projector_checkpoint WHERE name = $1 FOR SHARE`;
    await lock.query(select, [name]);
    const { rows: locked } = await lock.query<{ last_seq: string }>(select, [name]);
    await catchUp(Number(locked[0]?.last_seq ?? 0));
    await snap.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { rows } = await snap.query<{ last_seq: string; chain: string | null }>(
      `SELECT last_seq, chain FROM ${quoteIdent(LIVE_SCHEMA)}.projector_checkpoint WHERE name = $1`,
      [name],
    );
    await lock.query('COMMIT');
    return { seq: Number(rows[0]?.last_seq ?? 0), storedHead: rows[0] ? rows[0].chain : null, found: rows.length > 0 };
  } catch (err) {
    failed = true;
    await lock.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    lock.release(failed);
  }
}

/** Most rounds of lock-free following before the lock is taken anyway (a projector faster than the rebuild). */
const FOLLOW_ROUNDS = 100;

export async function auditVerify(opts: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const limit = opts.limit ?? 1_000;
  // The projector's own reading of the settings (a bad value is a ConfigError, as there).
  const { keepJobsSeconds } = loadRetentionConfig(opts.env ?? process.env);
  const scratch = `audit_${genJid()}`;
  const databaseUrl = withApplicationName(opts.databaseUrl, APPLICATION_NAME + scratch);
  const live = openDatabase(databaseUrl, { schema: LIVE_SCHEMA, max: 2 });
  let rebuild: Rebuild | undefined;
  let snap: pg.PoolClient | undefined;
  let failed = false;
  try {
    // Held to the end: it names the scratch schema for dropStaleScratchSchemas of other runs.
    snap = await live.pool.connect();
    await dropStaleScratchSchemas(snap);
    const bounds = await streamBounds(opts.ledger);
    const first = await readCheckpointChain(snap, opts.name);
    const chain = new ChainComparer(snap, opts.name);
    // Large returns whose object is gone or altered (the rows then match, both without it).
    const objects = new Map<number, RowDifference>();
    const onUnresolvedReturn = (m: RawMessage, err: Error) => {
      const p = parseSubject(m.subject);
      const key: Record<string, string> = { seq: String(m.seq) };
      if (p?.kind === 'job.ret') Object.assign(key, { jid: p.jid, id: p.agentId });
      objects.set(m.seq, { table: RETURNS_BUCKET, key, kind: 'object', columns: [], reason: err.message });
    };
    const badlySigned = new Map<number, { seq: number; subject: string; reason: string }>();
    const onSignatureProblem = (l: DeadLetter) =>
      badlySigned.set(l.seq, { seq: l.seq, subject: l.subject, reason: l.error.replace(/^signature: /, '') });
    let target = Math.min(first.lastSeq, bounds.last);
    rebuild = await Rebuild.create({
      databaseUrl,
      ledger: opts.ledger,
      name: opts.name,
      masterId: opts.masterId,
      schema: scratch,
      fromSeq: Math.max(1, bounds.first),
      batch: opts.batch,
      ...(opts.onProgress ? { onProgress: (p: RebuildProgress) => opts.onProgress!({ ...p, target }) } : {}),
      onChain: chain.onChain,
      onUnresolvedReturn,
      // Retention's log: outside any transaction until the snapshot, then in it.
      live: snap,
      liveSchema: LIVE_SCHEMA,
      strictRemovals: true,
      signatureTrust: opts.signatureTrust,
      onSignatureProblem,
    });
    chain.checkable = rebuild.chainCheckable;
    await advance(rebuild, chain, target);
    // Lock-free, until less than a batch behind the live checkpoint.
    for (let round = 0; round < FOLLOW_ROUNDS; round++) {
      const c = await readCheckpointChain(snap, opts.name);
      if (c.lastSeq - rebuild.seq < (opts.batch ?? 1_000)) break;
      target = c.lastSeq;
      await advance(rebuild, chain, target);
    }

    const { seq, storedHead, found } = await takeSnapshot(live.pool, snap, opts.name, async (locked) => {
      target = locked;
      await advance(rebuild!, chain, locked);
    });
    await opts.afterSnapshot?.();
    if (rebuild.seq !== seq) throw new RebuildError(`the rebuild reached sequence ${rebuild.seq}, the live checkpoint is at ${seq}`);

    const removalDifferences: RowDifference[] = [];
    let removalCount = 0;
    await checkRemovals(snap, opts.ledger, opts.name, seq, keepJobsSeconds, (s, reason) => {
      removalCount++;
      if (removalDifferences.length < limit)
        removalDifferences.push({ table: 'retention_log', key: { seq: String(s) }, kind: 'removal', columns: [], reason });
    });
    const tables = await compareTables(snap, scratch, Math.max(0, limit - removalDifferences.length));
    const rowCount = await countRows(snap);

    // The checkpoint's own chain value.
    const head = await readCheckpointChain(rebuild.database.pool, opts.name);
    if (found && seq > 0) {
      if (storedHead === null) chain.result.unknown = true;
      else if (head.chain !== null) chain.check(seq, storedHead, head.chain);
    }
    await snap.query('ROLLBACK');
    const objectDifferences = [...objects.values()].sort((a, b) => Number(a.key['seq']) - Number(b.key['seq']));
    const count = removalCount + tables.count + objectDifferences.length;
    const problems = [...badlySigned.values()].sort((a, b) => a.seq - b.seq);
    return {
      ok: count === 0 && chain.result.diverging === 0 && problems.length === 0,
      seq,
      events: rebuild.applied,
      rows: rowCount,
      differences: [...removalDifferences, ...objectDifferences.slice(0, limit), ...tables.differences],
      differenceCount: count,
      chain: chain.result,
      signatures: { checked: opts.signatureTrust !== undefined, problems: problems.slice(0, limit), count: problems.length },
      removals: rebuild.removalsApplied,
      ms: Date.now() - started,
    };
  } catch (err) {
    failed = true;
    await snap?.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    if (rebuild) await rebuild.drop(live.pool).catch(() => undefined);
    else await live.pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(scratch)} CASCADE`).catch(() => undefined);
    snap?.release(failed);
    await live.close().catch(() => undefined);
  }
}
