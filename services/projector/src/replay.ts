import type pg from 'pg';
import { genJid, type SignatureTrust } from '@jobledger/core';
import { checkSchemaName, openDatabase, quoteIdent, type Ledger } from '@jobledger/runtime';
import { lockCheckpoint, readCheckpoint, readCheckpointChain } from './apply.js';
import { Rebuild, RebuildError, type RebuildProgress } from './rebuild.js';
import { firstSeqSince, streamBounds } from './stream-cursor.js';

/**
 * `jobledger replay`: rebuilds every read model from the stream into a fresh schema, and with
 * `swap` puts it in place of the live one (`public`).
 *
 * First, without any lock, the rebuild follows the live checkpoint (it never goes past it, so
 * every retention removal is applied at its own sequence) until it is less than one batch
 * behind. Then the swap, in ONE transaction on the live database:
 *   1. lock the live checkpoint row (FOR UPDATE, as every projector batch and retention pass
 *      does first): the projector and retention wait;
 *   2. catch the rebuild up to that checkpoint (and the retention removals recorded up to it),
 *      so nothing the projector applied meanwhile is lost: less than a batch, the only work
 *      done under the lock;
 *   3. carry the other checkpoint rows (the returner feeds' `master_job_cache:<name>`,
 *      `event_return:<name>`, locked FOR UPDATE) into the rebuild: they say what the returners'
 *      targets hold, not the read models, and a feed that lost its row would hand the whole
 *      stream to its returner again;
 *   4. `ALTER SCHEMA public RENAME TO <retired>; ALTER SCHEMA <rebuild> RENAME TO public`, then
 *      the new `public` gets the owner and the privileges (`nspacl`) of the old one, and each of
 *      its tables and sequences the owner and privileges of the old one of that name (so the
 *      roles that could use the live tables still can; column privileges are not copied);
 *   5. COMMIT.
 * A `public` that holds anything jobledger's migrations do not create (a table, view,
 * sequence, function or type of someone else's, an extension) is refused, before the rebuild
 * and again under the lock: it would go to the retired schema with the old tables.
 * The projector keeps working: its connections keep the default `search_path` and it uses no
 * named prepared statements, so every statement after the commit resolves `projector_checkpoint`
 * & co to the new tables; a batch that waited for the lock re-selects the checkpoint after it
 * (apply.ts's lockCheckpoint), so it locks the new row, applies what follows the checkpoint and
 * skips what the rebuild already holds.
 */

/** The live schema the services use (their default `search_path`). */
export const LIVE_SCHEMA = 'public';

export interface ReplayOptions {
  databaseUrl: string;
  ledger: Ledger;
  /** The live checkpoint (the projector's consumer name). */
  name: string;
  masterId: string;
  /** Target schema; default `replay_<jid of now>`. */
  into?: string;
  /** First sequence to replay (a partial rebuild). */
  fromSeq?: number;
  /** Replay from the first message stored at or after this time (a partial rebuild). */
  since?: Date;
  /** Replace the live schema with the rebuild. */
  swap?: boolean;
  batch?: number;
  onProgress?: (p: RebuildProgress) => void;
  /** Called in the swap's transaction, under the lock, just before its COMMIT: a seam for tests. */
  beforeCommit?: () => Promise<void>;
  /** Checks every event's signature as the live projector does. */
  signatureTrust?: SignatureTrust | undefined;
}

export interface ReplayResult {
  schema: string;
  fromSeq: number;
  /** The rebuild's checkpoint at the end. */
  lastSeq: number;
  /** Messages applied (events and dead letters). */
  applied: number;
  deadLetters: number;
  removals: number;
  /** Removals recorded after the replay had passed their sequence (it ran ahead of the projector): not applied. */
  removalsSkipped: number;
  ms: number;
  eventsPerSecond: number;
  /** With swap: where the previous live tables are now. */
  retired?: string;
}

/** `--swap` refused: the live schema holds objects that are not jobledger's. */
export class SwapRefusedError extends Error {
  override readonly name = 'SwapRefusedError';
  readonly retryable = false;
}

/** Bad replay arguments (exit 2 in the CLI). */
export class ReplayUsageError extends Error {
  override readonly name = 'ReplayUsageError';
  readonly retryable = false;
}

export async function replay(opts: ReplayOptions): Promise<ReplayResult> {
  const started = Date.now();
  const stamp = genJid();
  const schema = checkSchemaName(opts.into ?? `replay_${stamp}`);
  if (schema === LIVE_SCHEMA) throw new ReplayUsageError(`cannot replay into the live schema ${LIVE_SCHEMA}`);
  if (opts.fromSeq !== undefined && opts.since !== undefined) throw new ReplayUsageError('give --from-seq or --since, not both');
  const partial = opts.fromSeq !== undefined || opts.since !== undefined;
  if (opts.swap && partial) throw new ReplayUsageError('--swap needs a whole rebuild: it cannot be combined with --from-seq or --since');

  const bounds = await streamBounds(opts.ledger);
  let fromSeq = Math.max(bounds.first, 1);
  if (opts.fromSeq !== undefined) {
    if (!Number.isSafeInteger(opts.fromSeq) || opts.fromSeq < 1)
      throw new ReplayUsageError(`--from-seq must be a sequence of 1 or more, got ${opts.fromSeq}`);
    fromSeq = Math.max(fromSeq, opts.fromSeq);
  }
  if (opts.since !== undefined) fromSeq = Math.max(fromSeq, await firstSeqSince(opts.ledger, opts.since));

  const live = openDatabase(opts.databaseUrl, { schema: LIVE_SCHEMA, max: 2 });
  let rebuild: Rebuild | undefined;
  try {
    // With swap the rebuild first goes to the live checkpoint read here, never past it, so every
    // removal retention records later is at or after its position.
    const checkpoint = await readCheckpointChain(live.pool, opts.name);
    rebuild = await Rebuild.create({
      databaseUrl: opts.databaseUrl,
      ledger: opts.ledger,
      name: opts.name,
      masterId: opts.masterId,
      schema,
      fromSeq,
      batch: opts.batch,
      onProgress: opts.onProgress,
      live: live.pool,
      liveSchema: LIVE_SCHEMA,
      strictRemovals: opts.swap === true,
      signatureTrust: opts.signatureTrust,
    });
    if (opts.swap) {
      try {
        await refuseForeignObjects(live.pool, schema, rebuild.deferredIndexNames);
      } catch (err) {
        await rebuild.drop(live.pool).catch(() => undefined);
        rebuild = undefined;
        throw err;
      }
    }
    // Without swap, the stream as it is now; with swap, the live checkpoint (see above).
    await rebuild.advanceTo(opts.swap ? Math.min(checkpoint.lastSeq, bounds.last) : bounds.last);

    await rebuild.buildDeferredIndexes();
    let retired: string | undefined;
    if (opts.swap) {
      await followUnlocked(live.pool, rebuild, opts.name, opts.batch ?? 1_000);
      retired = await swapIn(live.pool, rebuild, opts.name, `${LIVE_SCHEMA}_before_${stamp}`, opts.beforeCommit);
    }
    await rebuild.close();
    const result: ReplayResult = {
      schema: opts.swap ? LIVE_SCHEMA : schema,
      fromSeq,
      lastSeq: rebuild.seq,
      applied: rebuild.applied,
      deadLetters: rebuild.deadLetters,
      removals: rebuild.removalsApplied,
      removalsSkipped: rebuild.removalsSkipped,
      ms: Date.now() - started,
      eventsPerSecond: rebuild.eventsPerSecond(),
      ...(retired ? { retired } : {}),
    };
    return result;
  } catch (err) {
    await rebuild?.close();
    throw err;
  } finally {
    await live.close().catch(() => undefined);
  }
}

/** Most rounds of lock-free catching up before the swap locks anyway (a projector faster than the rebuild). */
const FOLLOW_ROUNDS = 100;

/** Advances the rebuild to the live checkpoint, without a lock, until it is less than `batch` behind. */
async function followUnlocked(pool: pg.Pool, rebuild: Rebuild, name: string, batch: number): Promise<void> {
  for (let round = 0; round < FOLLOW_ROUNDS; round++) {
    const checkpoint = await readCheckpoint(pool, name);
    if (checkpoint - rebuild.seq < batch) return;
    await rebuild.advanceTo(checkpoint);
  }
}

const RELKIND: Record<string, string> = {
  r: 'table',
  p: 'table',
  v: 'view',
  m: 'materialized view',
  S: 'sequence',
  i: 'index',
  I: 'index',
  f: 'foreign table',
  c: 'type',
};

/** What a schema holds, one line an object (`table jobs`, `function f(integer)`, `extension pgcrypto`…). */
async function schemaObjects(db: pg.Pool | pg.ClientBase, schema: string): Promise<Set<string>> {
  const { rows } = await db.query<{ kind: string; name: string }>(
    `WITH n AS (SELECT oid FROM pg_namespace WHERE nspname = $1)
     SELECT c.relkind::text AS kind, c.relname::text AS name FROM pg_class c, n WHERE c.relnamespace = n.oid
     UNION ALL SELECT 'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' FROM pg_proc p, n WHERE p.pronamespace = n.oid
     UNION ALL SELECT 'type', t.typname::text FROM pg_type t, n WHERE t.typnamespace = n.oid AND t.typrelid = 0
       AND NOT (t.typelem <> 0 AND (SELECT e.typarray FROM pg_type e WHERE e.oid = t.typelem) = t.oid)
     UNION ALL SELECT 'extension', e.extname::text FROM pg_extension e, n WHERE e.extnamespace = n.oid
     UNION ALL SELECT 'collation', co.collname::text FROM pg_collation co, n WHERE co.collnamespace = n.oid
     UNION ALL SELECT 'operator', o.oprname::text FROM pg_operator o, n WHERE o.oprnamespace = n.oid`,
    [schema],
  );
  return new Set(rows.map((r) => `${RELKIND[r.kind] ?? r.kind} ${r.name}`));
}

/**
 * Refuses the swap when the live schema holds objects the rebuild (made by jobledger's
 * migrations) does not: they are someone else's, and would silently go to the retired schema.
 */
async function refuseForeignObjects(db: pg.Pool | pg.ClientBase, rebuildSchema: string, notYetBuilt: readonly string[]): Promise<void> {
  const ours = await schemaObjects(db, rebuildSchema);
  for (const name of notYetBuilt) ours.add(`index ${name}`);
  const foreign = [...(await schemaObjects(db, LIVE_SCHEMA))].filter((o) => !ours.has(o)).sort();
  if (foreign.length === 0) return;
  const shown = foreign.slice(0, 10).join(', ') + (foreign.length > 10 ? `, … (${foreign.length} in all)` : '');
  throw new SwapRefusedError(
    `schema ${LIVE_SCHEMA} holds objects that are not jobledger's (${shown}): not swapped; move them to another schema first`,
  );
}

/**
 * The new live schema gets the retired one's owner and privileges, and each of its tables,
 * views and sequences those of the retired relation of the same name.
 */
async function carryOwnersAndPrivileges(client: pg.ClientBase, retired: string): Promise<void> {
  const { rows: ns } = await client.query<{ owner: string; acl: string[] | null; current: string }>(
    `SELECT pg_get_userbyid(o.nspowner) AS owner, o.nspacl::text[] AS acl, pg_get_userbyid(n.nspowner) AS current
     FROM pg_namespace o, pg_namespace n WHERE o.nspname = $1 AND n.nspname = $2`,
    [retired, LIVE_SCHEMA],
  );
  const schema = ns[0];
  if (schema === undefined) throw new RebuildError(`schema ${retired} or ${LIVE_SCHEMA} is gone`);
  if (schema.owner !== schema.current) await client.query(`ALTER SCHEMA ${quoteIdent(LIVE_SCHEMA)} OWNER TO ${quoteIdent(schema.owner)}`);
  await grantAll(client, `SCHEMA ${quoteIdent(LIVE_SCHEMA)}`, `SELECT nspacl FROM pg_namespace WHERE nspname = $1`, [retired]);

  const { rows: rels } = await client.query<{ name: string; kind: string; owner: string; current: string }>(
    `SELECT n.relname AS name, n.relkind::text AS kind, pg_get_userbyid(o.relowner) AS owner, pg_get_userbyid(n.relowner) AS current
     FROM pg_class n JOIN pg_class o ON o.relname = n.relname AND o.relkind = n.relkind
     WHERE n.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $2)
       AND o.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)
       AND n.relkind IN ('r', 'p', 'v', 'm', 'S')
       AND (o.relowner <> n.relowner OR o.relacl IS NOT NULL)
     ORDER BY 1`,
    [retired, LIVE_SCHEMA],
  );
  for (const r of rels) {
    const what = r.kind === 'S' ? 'SEQUENCE' : r.kind === 'v' ? 'VIEW' : r.kind === 'm' ? 'MATERIALIZED VIEW' : 'TABLE';
    const name = `${quoteIdent(LIVE_SCHEMA)}.${quoteIdent(r.name)}`;
    if (r.owner !== r.current) await client.query(`ALTER ${what} ${name} OWNER TO ${quoteIdent(r.owner)}`);
    await grantAll(
      client,
      `${what === 'SEQUENCE' ? 'SEQUENCE' : 'TABLE'} ${name}`,
      `SELECT c.relacl FROM pg_class c WHERE c.relname = $2 AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)`,
      [retired, r.name],
    );
  }
}

/** GRANTs on `object` every privilege of the ACL `aclSql` selects (no-op for a default ACL). */
async function grantAll(client: pg.ClientBase, object: string, aclSql: string, values: unknown[]): Promise<void> {
  const { rows } = await client.query<{ privilege_type: string; is_grantable: boolean; grantee: string | null }>(
    `SELECT a.privilege_type, a.is_grantable, CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee
     FROM (${aclSql}) AS x(acl), aclexplode(x.acl) AS a`,
    values,
  );
  for (const r of rows) {
    const to = r.grantee === null ? 'PUBLIC' : quoteIdent(r.grantee);
    await client.query(`GRANT ${r.privilege_type} ON ${object} TO ${to}${r.is_grantable ? ' WITH GRANT OPTION' : ''}`);
  }
}

/** Steps 1-5 of the swap (see the top of this file); returns the retired schema's name. */
async function swapIn(pool: pg.Pool, rebuild: Rebuild, name: string, retired: string, beforeCommit?: () => Promise<void>): Promise<string> {
  const client = await pool.connect();
  let failed = false;
  try {
    await client.query('BEGIN');
    const checkpoint = await lockCheckpoint(client, name);
    await refuseForeignObjects(client, rebuild.schema, rebuild.deferredIndexNames);
    await rebuild.advanceTo(checkpoint.lastSeq);
    if (rebuild.seq !== checkpoint.lastSeq) {
      throw new RebuildError(`the rebuild is at sequence ${rebuild.seq}, the live checkpoint at ${checkpoint.lastSeq}: not swapped`);
    }
    // A feed writing its row meanwhile waits for this transaction; a write of the old row after
    // the commit is repeated by its next checkpoint (at worst a few events handed over again).
    await client.query(
      `INSERT INTO ${quoteIdent(rebuild.schema)}.projector_checkpoint (name, last_seq, updated_at, chain)
       SELECT name, last_seq, updated_at, chain FROM ${quoteIdent(LIVE_SCHEMA)}.projector_checkpoint WHERE name <> $1 FOR UPDATE
       ON CONFLICT (name) DO UPDATE SET last_seq = EXCLUDED.last_seq, updated_at = EXCLUDED.updated_at, chain = EXCLUDED.chain`,
      [name],
    );
    await client.query(`ALTER SCHEMA ${quoteIdent(LIVE_SCHEMA)} RENAME TO ${quoteIdent(retired)}`);
    await client.query(`ALTER SCHEMA ${quoteIdent(rebuild.schema)} RENAME TO ${quoteIdent(LIVE_SCHEMA)}`);
    await carryOwnersAndPrivileges(client, retired);
    await beforeCommit?.();
    await client.query('COMMIT');
    return retired;
  } catch (err) {
    failed = true;
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release(failed);
  }
}
