import type pg from 'pg';
import { largeReturnResolver } from './resolve-returns.js';
import {
  checkSchemaName,
  migrateDatabase,
  openDatabase,
  quoteIdent,
  type Database,
  SignatureWorkers,
  type Ledger,
  type ReturnObjectError,
} from '@jobledger/runtime';
import type { SignatureTrust } from '@jobledger/core';
import { applyBatch, type ApplyOptions } from './apply.js';
import type { DeadLetter, RawMessage } from './projections.js';
import { keyBookFromStream, SignatureCheck, writeKeyBook } from './signatures.js';
import { streamReader } from './projector.js';
import { applyRemoval, readRemovals } from './retention.js';
import { beyondStreamError, StreamCursor, streamBounds } from './stream-cursor.js';

/**
 * A rebuild of the read models from the stream into a schema of their own: the projector's
 * own code path (apply.ts's applyBatch, hence projections.ts's planBatch, the checkpoint and
 * the hash chain) on a pool whose `search_path` is that schema, fed in stream order by an
 * ordered consumer. Retention's recorded removals (`retention_log`) are applied at the
 * sequence they were made at, so the rebuild ends with the rows the live tables hold.
 */

/** A rebuild that cannot reach a consistent end (the stream or the live tables changed under it). */
export class RebuildError extends Error {
  override readonly name = 'RebuildError';
  readonly retryable = false;
}

export interface RebuildProgress {
  /** The rebuild's checkpoint. */
  seq: number;
  /** The sequence it is going to. */
  target: number;
  /** First sequence it applies. */
  fromSeq: number;
  /** Messages applied so far. */
  applied: number;
  eventsPerSecond: number;
}

export interface RebuildOptions {
  databaseUrl: string;
  ledger: Ledger;
  /** Checkpoint name, the live projector's (its consumer). */
  name: string;
  masterId: string;
  /** The schema to build in: created, must be empty. */
  schema: string;
  /** First sequence to apply (1 or the stream's first for a whole rebuild). */
  fromSeq: number;
  /** Messages per transaction (default 1000). */
  batch?: number;
  onProgress?: (p: RebuildProgress) => void;
  onChain?: (seq: number, hash: string) => void;
  /** Called for a large return whose object is missing or does not match its reference. */
  onUnresolvedReturn?: (m: RawMessage, err: ReturnObjectError) => void;
  /** The live tables' pool: retention's log is read from there as the rebuild goes. */
  live: pg.Pool | pg.ClientBase;
  liveSchema: string;
  /**
   * A removal recorded after the rebuild passed its sequence is an error (verify, swap: they
   * never pass the live checkpoint, so it cannot happen) rather than skipped (a plain replay).
   */
  strictRemovals: boolean;
  /** Checks every event's signature as the live projector does (its `signatureTrust`). */
  signatureTrust?: SignatureTrust | undefined;
  /** Called for each message quarantined for its signature. */
  onSignatureProblem?: (letter: DeadLetter) => void;
}

/**
 * The GIN indexes of a rebuild's schema (on the JSON columns: `jids.load`, `salt_events.data`,
 * `salt_returns.return`/`full_ret`, `jobs.tgt`/`metadata`), dropped when it is created and
 * built once at the end (`buildDeferredIndexes`): kept up row by row they were most of
 * PostgreSQL's share of a replay, and one build over the finished table is cheaper. Unique
 * indexes (the upserts' conflict targets) and btree indexes (retention's lookups by jid) stay.
 * `audit verify` never builds them: its scratch schema is compared, then dropped.
 */
async function dropGinIndexes(pool: pg.Pool, schema: string): Promise<{ name: string; def: string }[]> {
  const { rows } = await pool.query<{ name: string; def: string }>(
    `SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS def
     FROM pg_index x
     JOIN pg_class i ON i.oid = x.indexrelid
     JOIN pg_am am ON am.oid = i.relam
     JOIN pg_namespace n ON n.oid = i.relnamespace
     WHERE n.nspname = $1 AND am.amname = 'gin' AND NOT x.indisunique
     ORDER BY 1`,
    [schema],
  );
  for (const r of rows) await pool.query(`DROP INDEX ${quoteIdent(schema)}.${quoteIdent(r.name)}`);
  return rows;
}

const PROGRESS_EVERY_MS = 250;

export class Rebuild {
  readonly schema: string;
  readonly fromSeq: number;
  /** The rebuild's checkpoint: every message up to it is applied. */
  seq: number;
  /** Messages applied (events and dead letters). */
  applied = 0;
  deadLetters = 0;
  removalsApplied = 0;
  private readonly started = Date.now();
  private lastProgress = 0;
  private cursor: StreamCursor | undefined;
  /** Removals recorded after the rebuild had passed their sequence (replay without swap only). */
  removalsSkipped = 0;
  private removalCursor = { seq: -1, part: 0 };
  /**
   * False when the rebuild starts after sequence 1 (a partial replay, or a stream whose first
   * sequence is above 1): it has no chain — the messages before it are not there to compute it
   * — so no chain value it would compare with is checkable. Not a difference.
   */
  readonly chainCheckable: boolean;
  /** The stream's last sequence when last asked (advanceTo). */
  private streamLast = 0;
  private readonly applyOpts: ApplyOptions;
  private readonly signatures: SignatureCheck | undefined;
  private readonly workers: SignatureWorkers | undefined;
  /** The next batch, read (and its signatures being verified) while the one before is applied. */
  private ahead: Promise<RawMessage[]> | undefined;

  private constructor(
    private readonly opts: RebuildOptions,
    readonly database: Database,
    /** The indexes `buildDeferredIndexes` builds. */
    private deferredIndexes: { name: string; def: string }[],
  ) {
    this.schema = opts.schema;
    this.fromSeq = opts.fromSeq;
    this.seq = opts.fromSeq - 1;
    this.chainCheckable = opts.fromSeq <= 1;
    this.workers = opts.signatureTrust ? new SignatureWorkers() : undefined;
    this.signatures = opts.signatureTrust ? new SignatureCheck(opts.signatureTrust, opts.onSignatureProblem, this.workers) : undefined;
    this.applyOpts = {
      name: opts.name,
      masterId: opts.masterId,
      maxFill: 1_000,
      ...streamReader(opts.ledger),
      resolveBody: largeReturnResolver(opts.ledger, opts.onUnresolvedReturn),
      ...(opts.onChain ? { onChain: opts.onChain } : {}),
      signatures: this.signatures,
    };
  }

  /** Creates the schema and its tables (SchemaError when it holds anything already). */
  static async create(opts: RebuildOptions): Promise<Rebuild> {
    const schema = checkSchemaName(opts.schema);
    await migrateDatabase(opts.databaseUrl, { schema });
    const database = openDatabase(opts.databaseUrl, { schema, max: 2 });
    let deferred: { name: string; def: string }[];
    try {
      deferred = await dropGinIndexes(database.pool, schema);
      if (opts.fromSeq > 1) {
        // A partial rebuild starts after fromSeq - 1 with no chain (the chain before it is not known here).
        await database.pool.query('INSERT INTO projector_checkpoint (name, last_seq, chain) VALUES ($1, $2, NULL)', [
          opts.name,
          opts.fromSeq - 1,
        ]);
        // And the keys as the key events before it left them.
        if (opts.signatureTrust) await writeKeyBook(database.pool, await keyBookFromStream(opts.ledger, opts.signatureTrust, opts.fromSeq));
      }
    } catch (err) {
      await database.close();
      throw err;
    }
    return new Rebuild(opts, database, deferred);
  }

  /** Builds the indexes left out while the rebuild applied (before its tables are used or swapped in). */
  async buildDeferredIndexes(): Promise<void> {
    for (const { def } of this.deferredIndexes) await this.database.pool.query(def);
    this.deferredIndexes = [];
  }

  /** Names of the indexes not built yet (the schema will have them). */
  get deferredIndexNames(): string[] {
    return this.deferredIndexes.map((i) => i.name);
  }

  /**
   * The sequence up to which the live read models were written by a version before the hash
   * chain and `retention_log` (projector_checkpoint.backfilled_seq, set when the projector
   * computed the chain for such a checkpoint), or undefined. Jobs retention removed before it
   * are in a rebuild but not in the live tables, and nothing records them: a `missing` row of
   * such a job cannot be checked. A `replay --swap` clears it (the rebuilt checkpoint has none).
   */
  static async upgradedAt(live: pg.Pool | pg.ClientBase, liveSchema: string, name: string): Promise<number | undefined> {
    const { rows } = await live.query<{ seq: string | null }>(
      `SELECT backfilled_seq::text AS seq FROM ${quoteIdent(liveSchema)}.projector_checkpoint WHERE name = $1`,
      [name],
    );
    const seq = rows[0]?.seq;
    return seq === null || seq === undefined ? undefined : Number(seq);
  }

  /**
   * The next recorded removal after the last one handled, read from the live `retention_log`
   * one at a time (the log grows with every pass: it is never loaded whole).
   */
  private async nextRemoval(): Promise<{ seq: number; part: number } | undefined> {
    const { rows } = await this.opts.live.query<{ seq: string; part: number }>(
      `SELECT seq::text, part FROM ${quoteIdent(this.opts.liveSchema)}.retention_log
       WHERE name = $1 AND (seq, part) > ($2::bigint, $3::int) ORDER BY seq, part LIMIT 1`,
      [this.opts.name, this.removalCursor.seq, this.removalCursor.part],
    );
    return rows[0] ? { seq: Number(rows[0].seq), part: rows[0].part } : undefined;
  }

  /** Applies the removals recorded at or before the rebuild's checkpoint; returns the sequence of the next one. */
  private async applyDueRemovals(): Promise<number | undefined> {
    for (;;) {
      const next = await this.nextRemoval();
      if (next === undefined || next.seq > this.seq) return next?.seq;
      this.removalCursor = next;
      if (next.seq < this.seq && this.applied > 0) {
        // Recorded after the rebuild passed its sequence: retention ran at a live checkpoint
        // behind the rebuild (a replay without --swap runs ahead of the projector).
        if (this.opts.strictRemovals) {
          throw new RebuildError(
            `retention removal at sequence ${next.seq} (part ${next.part}) was recorded after the rebuild passed it (at ${this.seq})`,
          );
        }
        this.removalsSkipped++;
        continue;
      }
      const [removal] = (await readRemovals(this.opts.live, this.opts.name, next.seq, next.seq)).filter((r) => r.part === next.part);
      if (removal === undefined) continue;
      const client = await this.database.pool.connect();
      let failed = false;
      try {
        await client.query('BEGIN');
        await applyRemoval(client, removal);
        await client.query('COMMIT');
        this.removalsApplied++;
      } catch (err) {
        failed = true;
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release(failed);
      }
    }
  }

  private progress(target: number, force = false): void {
    const now = Date.now();
    if (!this.opts.onProgress || (!force && now - this.lastProgress < PROGRESS_EVERY_MS)) return;
    this.lastProgress = now;
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    this.opts.onProgress({
      seq: this.seq,
      target,
      fromSeq: this.fromSeq,
      applied: this.applied,
      eventsPerSecond: Math.round(this.applied / seconds),
    });
  }

  /**
   * A target beyond the stream's end would wait for ever (while swap and verify hold the
   * checkpoint's lock): fails at once, naming the live checkpoint when it is what lies beyond
   * (the callers' targets never pass it). The stream only grows, so its last sequence is asked
   * again only for a target beyond the last one seen.
   */
  private async checkStreamReaches(target: number): Promise<void> {
    this.streamLast = (await streamBounds(this.opts.ledger)).last;
    if (target <= this.streamLast) return;
    const { rows } = await this.opts.live.query<{ seq: string }>(
      `SELECT last_seq::text AS seq FROM ${quoteIdent(this.opts.liveSchema)}.projector_checkpoint WHERE name = $1`,
      [this.opts.name],
    );
    const checkpoint = Number(rows[0]?.seq ?? 0);
    throw checkpoint > this.streamLast
      ? beyondStreamError(this.opts.ledger.stream, checkpoint, this.streamLast)
      : beyondStreamError(this.opts.ledger.stream, target, this.streamLast, 'sequence');
  }

  /** Applies every message up to `target` (a sequence the stream holds), with the removals due on the way. */
  async advanceTo(target: number): Promise<void> {
    const batch = this.opts.batch ?? 1_000;
    if (target > this.seq && target > this.streamLast) await this.checkStreamReaches(target);
    let nextRemoval = await this.applyDueRemovals();
    while (this.seq < target) {
      const cut = nextRemoval !== undefined && nextRemoval < target ? nextRemoval : target;
      this.cursor ??= await StreamCursor.open(this.opts.ledger, this.seq + 1);
      const messages = await (this.ahead ?? this.readChecked(batch, cut));
      this.ahead = undefined;
      if (messages.length === 0) {
        // The stream never deletes (deny_delete): a hole here is not something to paper over.
        throw new RebuildError(`the stream holds no message from sequence ${this.seq + 1} to ${cut}`);
      }
      // The next batch is read and its signatures verified while this one is written (same
      // cut: a batch that stops short of it leaves no removal due).
      const last = messages[messages.length - 1]!.seq;
      if (last < cut) {
        this.ahead = this.readChecked(batch, cut);
        this.ahead.catch(() => undefined); // awaited by the next turn, or dropped by close()
      }
      for (;;) {
        const r = await applyBatch(this.database.pool, messages, this.applyOpts);
        this.seq = Math.max(this.seq, r.lastSeq);
        this.applied += r.applied;
        this.deadLetters += r.deadLetters.length;
        if (r.complete) break;
      }
      nextRemoval = await this.applyDueRemovals();
      this.progress(target);
    }
    this.progress(target, true);
  }

  /** The next messages up to `cut`, with their signatures verified on the workers. */
  private async readChecked(batch: number, cut: number): Promise<RawMessage[]> {
    const messages = await this.cursor!.take(batch, cut);
    await this.signatures?.precheck(messages);
    return messages;
  }

  /** Messages per second since the start. */
  eventsPerSecond(): number {
    return Math.round(this.applied / Math.max((Date.now() - this.started) / 1000, 0.001));
  }

  /** Stops reading and closes the pool; the schema stays. */
  async close(): Promise<void> {
    this.ahead = undefined;
    await this.cursor?.close();
    this.cursor = undefined;
    await this.workers?.close();
    await this.database.close().catch(() => undefined);
  }

  /** Closes, then drops the schema and everything in it. */
  async drop(live: pg.Pool | pg.ClientBase): Promise<void> {
    await this.close();
    await live.query(`DROP SCHEMA IF EXISTS ${quoteIdent(this.schema)} CASCADE`);
  }
}
