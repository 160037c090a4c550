import type pg from 'pg';
import { CHAIN_ZERO, chainOver } from '@jobledger/core';
import { nativeChainNext } from '@jobledger/runtime';
import type { SignatureCheck } from './signatures.js';
import { deadLetterStatements, planBatch, type DeadLetter, type RawMessage, type SqlStatement } from './projections.js';

/**
 * Applies a batch of stream messages to the read models in ONE transaction, together with the
 * checkpoint (the last stream sequence applied):
 *
 *   BEGIN; SELECT last_seq … FOR UPDATE; <the batch's statements>; UPDATE checkpoint; COMMIT
 *
 * The checkpoint carries the ledger hash chain (core's `ledger-chain.ts`) after its sequence:
 * the chain is extended over every message applied (events and dead letters, in stream order)
 * and stored in the same transaction, on the checkpoint row and as a `projector_chain` row
 * (name, last sequence of the batch, value), which `audit verify` recomputes from the stream.
 * The rows it writes are the same whoever applies the messages: the projector, or a replay
 * into another schema (its pool's `search_path`).
 * - Messages at or below the checkpoint were applied before (a redelivery): skipped.
 * - Messages are applied strictly in stream order and without gaps. JetStream does not promise
 *   that: after a crash, or a nak, the consumer hands out newer messages while the older ones
 *   wait for their redelivery. A gap between the checkpoint and the first delivered message is
 *   therefore read from the stream itself (`fetchMissing`) and applied first; when the
 *   redelivery comes it is at or below the checkpoint and skipped. Without this, the checkpoint
 *   would move past events that were never applied.
 * - A statement failing on the data (SQLSTATE class 21/22/23/54: a value too long for its
 *   column, a NUL character, a number out of range…) fails the same way on every retry: the
 *   batch is then applied again one message at a time under savepoints, and a message that
 *   still fails becomes a dead letter. Any other error rolls back and is thrown (retryable).
 */

export interface ApplyOptions {
  /** Checkpoint row name (the consumer's name). */
  name: string;
  masterId: string;
  /** Most messages read from the stream to fill a gap within one transaction. */
  maxFill: number;
  /** Reads stream messages by sequence; `null` for one the stream no longer holds. */
  fetchMissing(seqs: readonly number[]): Promise<(RawMessage | null)[]>;
  /** First sequence the stream still holds (gaps below it cannot be filled). */
  streamFirstSeq(): Promise<number>;
  /** Called with the chain value after every message applied (a rebuild checks them against the stored chain). */
  onChain?: (seq: number, hash: string) => void;
  /**
   * The body to project for a message: a `job.returned` whose return is in the object store gets
   * it put back (runtime's `resolveReturnBody`). The hash chain and dead letters keep the stream's
   * own bytes. Throws (retryable) when the object store cannot be read.
   */
  resolveBody?: (m: RawMessage) => Promise<Uint8Array>;
  /** Checks every message's signature before it is projected (signatures.ts); none checked when absent. */
  signatures?: SignatureCheck | undefined;
}

export interface ApplyResult {
  /** Checkpoint after the transaction. */
  lastSeq: number;
  /** The hash chain after `lastSeq` (null while unknown). */
  chain: string | null;
  /** Messages applied (events and dead letters), including those read to fill a gap. */
  applied: number;
  /** Messages at or below the checkpoint: already applied. */
  skipped: number;
  /** Messages read from the stream to fill a gap. */
  filled: number;
  /** Sequences in a gap that the stream no longer holds. */
  missing: number;
  deadLetters: DeadLetter[];
  /** False when a gap was larger than `maxFill`: call again with the same messages. */
  complete: boolean;
  /** `isolate` when a data error made the batch go one message at a time. */
  mode: 'batch' | 'isolate';
}

/** A statement that failed, with the read model it was writing. */
export class ProjectionStatementError extends Error {
  override readonly name = 'ProjectionStatementError';
  readonly code: string | undefined;
  readonly statement: string;
  readonly retryable: boolean;
  constructor(statement: string, cause: unknown) {
    const code = (cause as { code?: unknown } | null)?.code;
    const sqlstate = typeof code === 'string' ? code : undefined;
    super(`${statement}: ${(cause as Error)?.message ?? String(cause)}${sqlstate ? ` (SQLSTATE ${sqlstate})` : ''}`, { cause });
    this.code = sqlstate;
    this.statement = statement;
    this.retryable = !isDataErrorCode(sqlstate);
  }
}

/** SQLSTATE classes that depend only on the data: retrying the same rows fails again. */
function isDataErrorCode(code: string | undefined): boolean {
  return code !== undefined && /^(21|22|23|54)/.test(code);
}

export function isDataError(err: unknown): err is ProjectionStatementError {
  return err instanceof ProjectionStatementError && !err.retryable;
}

async function exec(client: pg.ClientBase, s: SqlStatement): Promise<void> {
  try {
    await client.query({ text: s.text, values: s.values });
  } catch (err) {
    throw new ProjectionStatementError(s.name, err);
  }
}

export interface Checkpoint {
  lastSeq: number;
  /** The hash chain after `lastSeq`; null when unknown (a checkpoint older than the chain). */
  chain: string | null;
}

const SELECT_CHECKPOINT = 'SELECT last_seq, chain FROM projector_checkpoint WHERE name = $1';

/**
 * Locks the checkpoint row (FOR UPDATE) and reads it. The select runs twice: a statement
 * resolves its table names when it starts, so one that waited for the lock while `replay
 * --swap` renamed the schemas holds the row of the retired tables; the second select is
 * resolved after that commit and locks the row of the tables now in use (then already ours
 * when nothing was swapped, so it costs one round trip).
 */
export async function lockCheckpoint(client: pg.ClientBase, name: string): Promise<Checkpoint> {
  const select = `${SELECT_CHECKPOINT} FOR UPDATE`;
  let { rows } = await client.query<{ last_seq: string; chain: string | null }>(select, [name]);
  ({ rows } = await client.query<{ last_seq: string; chain: string | null }>(select, [name]));
  if (rows.length === 0) {
    await client.query('INSERT INTO projector_checkpoint (name, last_seq, chain) VALUES ($1, 0, $2) ON CONFLICT (name) DO NOTHING', [
      name,
      CHAIN_ZERO,
    ]);
    ({ rows } = await client.query<{ last_seq: string; chain: string | null }>(select, [name]));
  }
  return { lastSeq: Number(rows[0]?.last_seq ?? 0), chain: rows[0]?.chain ?? null };
}

/** The checkpoint and its chain without locking them (sequence 0, chain h_0 before the first batch). */
export async function readCheckpointChain(db: pg.Pool | pg.ClientBase, name: string): Promise<Checkpoint> {
  const { rows } = await db.query<{ last_seq: string; chain: string | null }>(SELECT_CHECKPOINT, [name]);
  if (rows.length === 0) return { lastSeq: 0, chain: CHAIN_ZERO };
  return { lastSeq: Number(rows[0]!.last_seq), chain: rows[0]!.chain };
}

/** The checkpoint without locking it (0 before the first batch). */
export async function readCheckpoint(db: pg.Pool | pg.ClientBase, name: string): Promise<number> {
  const { rows } = await db.query<{ last_seq: string }>('SELECT last_seq FROM projector_checkpoint WHERE name = $1', [name]);
  return Number(rows[0]?.last_seq ?? 0);
}

interface Contiguous {
  todo: RawMessage[];
  skipped: number;
  filled: number;
  missing: number;
  complete: boolean;
}

/** The messages after `last`, in order, with every gap filled from the stream (up to maxFill). */
async function contiguous(messages: readonly RawMessage[], last: number, opts: ApplyOptions): Promise<Contiguous> {
  const bySeq = new Map<number, RawMessage>();
  let skipped = 0;
  for (const m of messages) {
    if (m.seq <= last) skipped++;
    else if (!bySeq.has(m.seq)) bySeq.set(m.seq, m);
  }
  const sorted = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  const todo: RawMessage[] = [];
  let filled = 0;
  let missing = 0;
  let expected = last + 1;
  for (const m of sorted) {
    if (m.seq > expected) {
      const first = await opts.streamFirstSeq();
      if (first > expected) {
        missing += Math.min(first, m.seq) - expected;
        expected = Math.min(first, m.seq);
      }
      const want: number[] = [];
      for (let s = expected; s < m.seq && filled + want.length < opts.maxFill; s++) want.push(s);
      const got = await opts.fetchMissing(want);
      for (let i = 0; i < want.length; i++) {
        const g = got[i];
        if (g) {
          todo.push(g);
          filled++;
        } else {
          missing++;
        }
      }
      expected += want.length;
      if (expected < m.seq) return { todo, skipped, filled, missing, complete: false };
    }
    todo.push(m);
    expected = m.seq + 1;
  }
  return { todo, skipped, filled, missing, complete: true };
}

async function transaction(
  client: pg.ClientBase,
  messages: readonly RawMessage[],
  opts: ApplyOptions,
  mode: 'batch' | 'isolate',
): Promise<ApplyResult> {
  await client.query('BEGIN');
  try {
    const checkpoint = await lockCheckpoint(client, opts.name);
    const last = checkpoint.lastSeq;
    const c = await contiguous(messages, last, opts);
    const deadLetters: DeadLetter[] = [];
    // Signatures first, on the stream's own bytes: what fails is a dead letter, nothing else.
    const book = opts.signatures ? await opts.signatures.bookAt(client, last) : undefined;
    let raws = c.todo;
    if (opts.signatures && book) {
      const checked = opts.signatures.check(c.todo, book);
      raws = checked.trusted;
      for (const s of deadLetterStatements(checked.letters)) await exec(client, s);
      deadLetters.push(...checked.letters);
    }
    const resolve = opts.resolveBody;
    const todo = resolve ? await Promise.all(raws.map(async (m) => ({ ...m, data: await resolve(m) }))) : raws;
    if (mode === 'batch') {
      const plan = planBatch(todo, { masterId: opts.masterId });
      for (const s of plan.statements) await exec(client, s);
      deadLetters.push(...plan.deadLetters);
    } else {
      for (const [i, m] of raws.entries()) {
        await client.query('SAVEPOINT one_message');
        try {
          const plan = planBatch([todo[i]!], { masterId: opts.masterId });
          for (const s of plan.statements) await exec(client, s);
          await client.query('RELEASE SAVEPOINT one_message');
          deadLetters.push(...plan.deadLetters);
        } catch (err) {
          if (!isDataError(err)) throw err;
          await client.query('ROLLBACK TO SAVEPOINT one_message');
          const letter: DeadLetter = {
            seq: m.seq,
            subject: m.subject,
            time: m.time,
            raw: m.data,
            error: `cannot be projected: ${err.message}`,
          };
          for (const s of deadLetterStatements([letter])) await exec(client, s);
          deadLetters.push(letter);
        }
      }
    }
    const lastSeq = c.todo.length > 0 ? c.todo[c.todo.length - 1]!.seq : last;
    let chain = checkpoint.chain;
    if (lastSeq > last) {
      // Unknown before (a checkpoint older than the chain): stays unknown until backfilled.
      if (chain !== null && opts.onChain !== undefined) {
        for (const m of c.todo) {
          chain = nativeChainNext(chain, m);
          opts.onChain(m.seq, chain);
        }
      } else if (chain !== null) {
        chain = chainOver(chain, c.todo, nativeChainNext);
      }
      await client.query('UPDATE projector_checkpoint SET last_seq = $2, chain = $3, updated_at = now() WHERE name = $1', [
        opts.name,
        lastSeq,
        chain,
      ]);
      if (chain !== null) {
        await client.query(
          'INSERT INTO projector_chain (name, seq, hash) VALUES ($1, $2, $3) ON CONFLICT (name, seq) DO UPDATE SET hash = EXCLUDED.hash',
          [opts.name, lastSeq, chain],
        );
      }
    }
    await client.query('COMMIT');
    if (opts.signatures && book) opts.signatures.committed(lastSeq, book);
    return {
      lastSeq,
      chain,
      applied: c.todo.length,
      skipped: c.skipped,
      filled: c.filled,
      missing: c.missing,
      deadLetters,
      complete: c.complete,
      mode,
    };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * Applies `messages` (any order, duplicates allowed) in one transaction with the checkpoint.
 * Applying the same messages again changes nothing. Throws on errors worth retrying; the
 * caller must then not acknowledge the messages.
 */
export async function applyBatch(pool: pg.Pool, messages: readonly RawMessage[], opts: ApplyOptions): Promise<ApplyResult> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    try {
      return await transaction(client, messages, opts, 'batch');
    } catch (err) {
      if (!isDataError(err)) throw err;
      return await transaction(client, messages, opts, 'isolate');
    }
  } catch (err) {
    // A connection that failed outside a statement is not given back to the pool.
    if (!(err instanceof ProjectionStatementError)) broken = err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.release(broken);
  }
}
