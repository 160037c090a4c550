import type pg from 'pg';
import { genJid } from '@jobledger/core';
import { openDatabase, quoteIdent, type Ledger } from '@jobledger/runtime';
import { readCheckpointChain } from './apply.js';
import { Rebuild, type RebuildProgress } from './rebuild.js';
import { LIVE_SCHEMA } from './replay.js';
import { streamBounds } from './stream-cursor.js';

/**
 * `jobledger audit verify`: rebuilds the read models from the stream into a scratch schema
 * (dropped afterwards) up to exactly the live checkpoint, then compares every row of every
 * read model with the live one, and the hash chain the projector stored with its checkpoints
 * with the chain recomputed over the stream.
 *
 * Exactly the live checkpoint: the rebuild first goes to the checkpoint read at the start; then
 * one transaction locks the live checkpoint row FOR SHARE (the projector's batches and
 * retention's passes lock it FOR UPDATE first, so they wait and nothing in the live tables
 * changes), reads it again, catches the rebuild up to it and compares. The projector waits for
 * the catch-up and the comparison only.
 *
 * Retention: a job retention removed is not a difference, and the proof is not "a missing row
 * is old enough". Every retention transaction records what it removed in `retention_log` at
 * the checkpoint it ran at (see retention.ts); the rebuild applies those removals at the same
 * sequence with the same statements, archive or delete, so its tables — archives included —
 * must equal the live ones row for row. A row missing for any other reason, or a removal that
 * took more than it recorded, is reported. (Removals made before the log existed are not in
 * it: they show as `missing` rows until `replay --swap` rebuilds the live tables once.)
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
  /** `missing`: the rebuild has it, the live table not; `extra`: the other way; `differs`: both, not equal. */
  kind: 'missing' | 'extra' | 'differs';
  /** The columns that differ (`differs`). */
  columns: string[];
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
  removals: number;
  ms: number;
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
}

/** `salt_returns: jid 2026… id web1: row differs (return)`. */
export function formatDifference(d: RowDifference): string {
  const key = Object.entries(d.key)
    .map(([k, v]) => `${k} ${v}`)
    .join(' ');
  const what = d.kind === 'differs' ? `row differs (${d.columns.join(', ')})` : d.kind;
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

async function readStoredChain(db: pg.Pool | pg.ClientBase, name: string, after: number, upTo: number): Promise<Map<number, string>> {
  const { rows } = await db.query<{ seq: string; hash: string }>(
    `SELECT seq::text, hash FROM ${quoteIdent(LIVE_SCHEMA)}.projector_chain WHERE name = $1 AND seq > $2 AND seq <= $3`,
    [name, after, upTo],
  );
  return new Map(rows.map((r) => [Number(r.seq), r.hash]));
}

export async function auditVerify(opts: VerifyOptions): Promise<VerifyReport> {
  const started = Date.now();
  const limit = opts.limit ?? 1_000;
  const scratch = `audit_${genJid()}`;
  const live = openDatabase(opts.databaseUrl, { schema: LIVE_SCHEMA, max: 2 });
  let rebuild: Rebuild | undefined;
  try {
    const bounds = await streamBounds(opts.ledger);
    const first = await readCheckpointChain(live.pool, opts.name);
    // The stored chain values, and the recomputed ones at those sequences (filled by the rebuild).
    const stored = await readStoredChain(live.pool, opts.name, 0, first.lastSeq);
    const recomputed = new Map<number, string>();
    rebuild = await Rebuild.create({
      databaseUrl: opts.databaseUrl,
      ledger: opts.ledger,
      name: opts.name,
      masterId: opts.masterId,
      schema: scratch,
      fromSeq: Math.max(1, bounds.first),
      batch: opts.batch,
      onProgress: opts.onProgress,
      onChain: (seq, hash) => {
        if (stored.has(seq)) recomputed.set(seq, hash);
      },
      live: live.pool,
      liveSchema: LIVE_SCHEMA,
      strictRemovals: true,
    });
    await rebuild.advanceTo(Math.min(first.lastSeq, bounds.last));

    const client = await live.pool.connect();
    let failed = false;
    try {
      await client.query('BEGIN');
      const select = `SELECT last_seq, chain FROM ${quoteIdent(LIVE_SCHEMA)}.projector_checkpoint WHERE name = $1 FOR SHARE`;
      await client.query(select, [opts.name]);
      const { rows } = await client.query<{ last_seq: string; chain: string | null }>(select, [opts.name]);
      const seq = Number(rows[0]?.last_seq ?? 0);
      const storedHead = rows[0] ? rows[0].chain : null;
      for (const [s, h] of await readStoredChain(client, opts.name, first.lastSeq, seq)) stored.set(s, h);
      await rebuild.advanceTo(seq);
      if (rebuild.seq !== seq) throw new Error(`the rebuild reached sequence ${rebuild.seq}, the live checkpoint is at ${seq}`);

      const { differences, count } = await compareTables(client, scratch, limit);
      const rowCount = await countRows(client);

      // The chain: every stored per-batch value, then the checkpoint's own.
      const chain: ChainCheck = { checked: 0, diverging: 0, unknown: false };
      const check = (s: number, storedHash: string, recomputedHash: string | undefined) => {
        chain.checked++;
        if (recomputedHash === storedHash) return;
        chain.diverging++;
        if (chain.first === undefined || s < chain.first.seq)
          chain.first = { seq: s, stored: storedHash, recomputed: recomputedHash ?? '(none)' };
      };
      for (const [s, h] of [...stored].sort((a, b) => a[0] - b[0])) check(s, h, recomputed.get(s));
      const head = await readCheckpointChain(rebuild.database.pool, opts.name);
      if (rows.length > 0 && seq > 0) {
        if (storedHead === null) chain.unknown = true;
        else if (head.chain !== null) check(seq, storedHead, head.chain);
      }
      await client.query('ROLLBACK');
      return {
        ok: count === 0 && chain.diverging === 0,
        seq,
        events: rebuild.applied,
        rows: rowCount,
        differences,
        differenceCount: count,
        chain,
        removals: rebuild.removalsApplied,
        ms: Date.now() - started,
      };
    } catch (err) {
      failed = true;
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release(failed);
    }
  } finally {
    if (rebuild) await rebuild.drop(live.pool).catch(() => undefined);
    else await live.pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(scratch)} CASCADE`).catch(() => undefined);
    await live.close().catch(() => undefined);
  }
}
