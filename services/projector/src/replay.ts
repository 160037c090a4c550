import type pg from 'pg';
import { genJid } from '@jobledger/core';
import { checkSchemaName, openDatabase, quoteIdent, type Ledger } from '@jobledger/runtime';
import { lockCheckpoint, readCheckpointChain } from './apply.js';
import { Rebuild, type RebuildProgress } from './rebuild.js';
import { firstSeqSince, streamBounds } from './stream-cursor.js';

/**
 * `jobledger replay`: rebuilds every read model from the stream into a fresh schema, and with
 * `swap` puts it in place of the live one (`public`).
 *
 * The swap, in ONE transaction on the live database:
 *   1. lock the live checkpoint row (FOR UPDATE, as every projector batch and retention pass
 *      does first): the projector and retention wait;
 *   2. catch the rebuild up to that checkpoint (and the retention removals recorded up to it),
 *      so nothing the projector applied meanwhile is lost — the rebuild never goes past the
 *      live checkpoint before that, so every removal is applied at its own sequence;
 *   3. carry the other checkpoint rows (the returner feeds' `master_job_cache:<name>`,
 *      `event_return:<name>`, locked FOR UPDATE) into the rebuild: they say what the returners'
 *      targets hold, not the read models, and a feed that lost its row would hand the whole
 *      stream to its returner again;
 *   4. `ALTER SCHEMA public RENAME TO <retired>; ALTER SCHEMA <rebuild> RENAME TO public`;
 *   5. COMMIT.
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
    });
    // Without swap, the stream as it is now; with swap, the live checkpoint (see above).
    await rebuild.advanceTo(opts.swap ? Math.min(checkpoint.lastSeq, bounds.last) : bounds.last);

    let retired: string | undefined;
    if (opts.swap) retired = await swapIn(live.pool, rebuild, opts.name, `${LIVE_SCHEMA}_before_${stamp}`);
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

/** Steps 1-5 of the swap (see the top of this file); returns the retired schema's name. */
async function swapIn(pool: pg.Pool, rebuild: Rebuild, name: string, retired: string): Promise<string> {
  const client = await pool.connect();
  let failed = false;
  try {
    await client.query('BEGIN');
    const checkpoint = await lockCheckpoint(client, name);
    await rebuild.advanceTo(checkpoint.lastSeq);
    if (rebuild.seq !== checkpoint.lastSeq) {
      throw new Error(`the rebuild is at sequence ${rebuild.seq}, the live checkpoint at ${checkpoint.lastSeq}: not swapped`);
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
