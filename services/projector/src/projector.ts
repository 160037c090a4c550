import type pg from 'pg';
import { largeReturnResolver } from './resolve-returns.js';
import { JetStreamApiCodes, JetStreamApiError, type ConsumerMessages, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { CHAIN_ZERO, projectorConsumerConfig } from '@jobledger/core';
import {
  migrateDatabase,
  nativeChainNext,
  openDatabase,
  openLedger,
  SignatureWorkers,
  type Database,
  type Ledger,
  type Logger,
  sleepUnlessAborted,
} from '@jobledger/runtime';
import { applyBatch, readCheckpoint, readCheckpointChain, type ApplyOptions } from './apply.js';
import type { ProjectorConfig } from './config.js';
import { streamTimeRows, type RawMessage, type StreamTimeRows } from './projections.js';
import { startRetention } from './retention.js';
import { SignatureCheck, toRawMessage } from './signatures.js';
import { checkBeyondStream, StreamCursor, StreamReadError } from './stream-cursor.js';

export interface Projector {
  /** Finishes the batch in flight, then closes the NATS connection and the pool. Idempotent. */
  stop(): Promise<void>;
  /** The last stream sequence committed to the read models. */
  appliedSeq(): number;
  /** Settles when the projector has stopped: resolves after stop(), rejects if it failed for good. */
  readonly done: Promise<void>;
}

const FETCH_EXPIRES_MS = 1_000;
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10_000;
/** Parallel direct gets when filling a gap. */
const FILL_CONCURRENCY = 64;
const PROGRESS_EVERY_MS = 10_000;

const sleep = sleepUnlessAborted;

function isConsumerNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound;
}

/** Creates the durable consumer when it does not exist; an existing one is left as it is. */
export async function ensureConsumer(jsm: JetStreamManager, stream: string, name: string): Promise<void> {
  try {
    await jsm.consumers.info(stream, name);
    return;
  } catch (err) {
    if (!isConsumerNotFound(err)) throw err;
  }
  try {
    await jsm.consumers.add(stream, projectorConsumerConfig(name));
  } catch (err) {
    // Another projector created it at the same moment.
    await jsm.consumers.info(stream, name).catch(() => {
      throw err;
    });
  }
}

const toRaw = toRawMessage;

/** The gap-filling reads of apply.ts, from the ledger stream. */
export function streamReader(ledger: Ledger): Pick<ApplyOptions, 'fetchMissing' | 'streamFirstSeq'> {
  const getOne = async (seq: number): Promise<RawMessage | null> => {
    let m;
    try {
      m = await ledger.jsm.direct.getMessage(ledger.stream, { seq });
    } catch {
      // A stream without allow_direct: ask the leader.
      m = await ledger.jsm.streams.getMessage(ledger.stream, { seq });
    }
    return m === null ? null : toRaw(m);
  };
  return {
    async fetchMissing(seqs) {
      const out: (RawMessage | null)[] = [];
      for (let i = 0; i < seqs.length; i += FILL_CONCURRENCY) {
        out.push(...(await Promise.all(seqs.slice(i, i + FILL_CONCURRENCY).map(getOne))));
      }
      return out;
    },
    async streamFirstSeq() {
      const info = await ledger.jsm.streams.info(ledger.stream);
      return info.state.first_seq;
    },
  };
}

/** Rows a version before the chain stamped with its clock, re-stamped with their message's stream time. */
const RESTAMP = {
  saltEvents: `UPDATE salt_events s SET alter_time = (e->>'t')::timestamptz
FROM jsonb_array_elements($1::jsonb) AS e
WHERE s.id = (e->>'id')::bigint AND s.alter_time IS DISTINCT FROM (e->>'t')::timestamptz`,
  deadLetters: `UPDATE dead_letters d SET received_at = (e->>'t')::timestamptz
FROM jsonb_array_elements($1::jsonb) AS e
WHERE d.seq = (e->>'seq')::bigint AND d.received_at IS DISTINCT FROM (e->>'t')::timestamptz`,
  // A return's rows: its jid, its agent id and the whole return as projections.ts stores it in full_ret.
  saltReturns: `UPDATE salt_returns s SET alter_time = (e->>'t')::timestamptz
FROM jsonb_array_elements($1::jsonb) AS e
WHERE s.jid = e->'r'->>'jid' AND s.id = e->'r'->>'id' AND s.full_ret = e->'r' AND s.alter_time IS DISTINCT FROM (e->>'t')::timestamptz`,
} as const;

/** Messages read and re-stamped per transaction during the backfill. */
const BACKFILL_BATCH = 5_000;

/**
 * A checkpoint from before the hash chain existed has none: computes it over the stream up to
 * the checkpoint (once, before the first batch) and stores it, so every later batch extends it.
 *
 * That version took the clock for `salt_events.alter_time`, `salt_returns.alter_time` and
 * `dead_letters.received_at`; a rebuild writes the message's stream time (projections.ts). The
 * same pass sets those columns to the stream time, batch by batch, in the transaction that
 * stores the chain (the checkpoint row locked FOR UPDATE as a batch does, so nothing else writes
 * meanwhile; an interrupted pass leaves nothing and is done again at the next start), and
 * records the checkpoint as `backfilled_seq`: retention removals before it were not logged
 * (`retention_log` came with the chain), so a rebuild cannot reproduce them.
 */
export async function backfillChain(
  database: Database,
  ledger: Ledger,
  name: string,
  logger: Logger,
  opts: { masterId: string; batch?: number },
): Promise<void> {
  const unlocked = await readCheckpointChain(database.pool, name);
  if (unlocked.chain !== null || unlocked.lastSeq === 0) return;
  const started = Date.now();
  const client = await database.pool.connect();
  let failed = false;
  let cursor: StreamCursor | undefined;
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<{ last_seq: string; chain: string | null }>(
      'SELECT last_seq, chain FROM projector_checkpoint WHERE name = $1 FOR UPDATE',
      [name],
    );
    const lastSeq = Number(rows[0]?.last_seq ?? 0);
    if (rows[0] === undefined || rows[0].chain !== null || lastSeq === 0) {
      await client.query('ROLLBACK');
      return;
    }
    await checkBeyondStream(ledger, lastSeq, `the checkpoint ${JSON.stringify(name)}`);
    cursor = await StreamCursor.open(ledger, 1);
    let chain = CHAIN_ZERO;
    let seq = 0;
    let restamped = 0;
    while (seq < lastSeq) {
      const messages = await cursor.take(opts.batch ?? BACKFILL_BATCH, lastSeq);
      if (messages.length === 0) throw new StreamReadError(`the stream holds no message from sequence ${seq + 1} to ${lastSeq}`);
      for (const m of messages) {
        chain = nativeChainNext(chain, m);
        seq = m.seq;
      }
      restamped += await restamp(client, streamTimeRows(messages, { masterId: opts.masterId }));
    }
    await client.query('UPDATE projector_checkpoint SET chain = $3, backfilled_seq = $2 WHERE name = $1', [name, seq, chain]);
    await client.query('INSERT INTO projector_chain (name, seq, hash) VALUES ($1, $2, $3) ON CONFLICT (name, seq) DO NOTHING', [
      name,
      seq,
      chain,
    ]);
    await client.query('COMMIT');
    logger.info(
      { checkpoint: seq, restamped, ms: Date.now() - started },
      'hash chain computed for the checkpoint; row times set to the stream times',
    );
  } catch (err) {
    failed = true;
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await cursor?.close();
    client.release(failed);
  }
}

/** Re-stamps one batch's rows; returns how many rows changed. */
async function restamp(client: pg.ClientBase, rows: StreamTimeRows): Promise<number> {
  let changed = 0;
  const run = async (text: string, list: readonly unknown[]) => {
    if (list.length === 0) return;
    changed += (await client.query(text, [JSON.stringify(list)])).rowCount ?? 0;
  };
  await run(RESTAMP.saltEvents, rows.saltEvents);
  await run(RESTAMP.deadLetters, rows.deadLetters);
  await run(RESTAMP.saltReturns, rows.saltReturns);
  return changed;
}

/**
 * Runs the projector: migrations, the durable consumer, then batches until stopped. Each batch
 * is applied in one transaction with the checkpoint (see apply.ts) and acknowledged only after
 * COMMIT; a failed batch is rolled back, nak'ed with a delay and retried after a back-off.
 */
export async function startProjector(config: ProjectorConfig, logger: Logger): Promise<Projector> {
  await migrateDatabase(config.databaseUrl);
  // One connection for batches, one for retention passes, one spare.
  const database: Database = openDatabase(config.databaseUrl, { max: 3 });
  let ledger: Ledger;
  try {
    ledger = await openLedger({
      natsUrl: config.natsUrl,
      stream: config.stream,
      name: `jobledger-projector-${config.consumer}`,
      auth: config.natsAuth,
    });
  } catch (err) {
    await database.close();
    throw err;
  }
  try {
    await ensureConsumer(ledger.jsm, config.stream, config.consumer);
  } catch (err) {
    await Promise.allSettled([ledger.nc.close(), database.close()]);
    throw err;
  }
  const consumer = await ledger.js.consumers.get(config.stream, config.consumer);
  // Cumulative acks when the consumer takes them (see core's projectorConsumerConfig).
  let ackAll = false;
  const readAckPolicy = async () => {
    ackAll = (await ledger.jsm.consumers.info(config.stream, config.consumer)).config.ack_policy === 'all';
  };
  try {
    await readAckPolicy();
  } catch (err) {
    await Promise.allSettled([ledger.nc.close(), database.close()]);
    throw err;
  }
  try {
    await backfillChain(database, ledger, config.consumer, logger, { masterId: config.masterId });
  } catch (err) {
    await Promise.allSettled([ledger.nc.close(), database.close()]);
    throw err;
  }
  let applied = await readCheckpoint(database.pool, config.consumer);
  logger.info(
    {
      stream: config.stream,
      consumer: config.consumer,
      checkpoint: applied,
      batch: config.batch,
      signatures: config.signatureTrust ? 'checked' : 'not checked',
    },
    'projector started',
  );

  const workers = config.signatureTrust ? new SignatureWorkers() : undefined;
  const applyOpts: ApplyOptions = {
    name: config.consumer,
    masterId: config.masterId,
    maxFill: Math.max(config.batch, 1_000),
    ...streamReader(ledger),
    resolveBody: largeReturnResolver(ledger),
    signatures: config.signatureTrust ? new SignatureCheck(config.signatureTrust, undefined, workers) : undefined,
  };
  const signatures = applyOpts.signatures;

  // Signatures are verified on worker threads as messages arrive, so that a batch finds them
  // checked (or being checked) when its turn comes: the messages received in one turn of the
  // event loop go to the workers together.
  const rawOf = new WeakMap<JsMsg, RawMessage>();
  const checkOf = new WeakMap<RawMessage, Promise<void>>();
  let toCheck: RawMessage[] = [];
  const received = (m: JsMsg): void => {
    const raw = toRaw(m);
    rawOf.set(m, raw);
    if (signatures === undefined) return;
    if (toCheck.length === 0) {
      setImmediate(() => {
        const group = toCheck;
        toCheck = [];
        const checked = signatures.precheck(group);
        for (const r of group) checkOf.set(r, checked);
      });
    }
    toCheck.push(raw);
  };

  const abort = new AbortController();
  let current: ConsumerMessages | undefined;
  let backoff = 0;
  let progress = { at: Date.now(), events: 0 };

  // Received, not yet applied messages. The fetcher keeps at most one fetch ahead (the queue
  // holds at most two batches), so the next batch is on its way while one is being applied.
  const queue: JsMsg[] = [];
  let wakeProcessor: (() => void) | undefined;
  let wakeFetcher: (() => void) | undefined;
  const signal = (which: 'processor' | 'fetcher') => {
    const f = which === 'processor' ? wakeProcessor : wakeFetcher;
    if (which === 'processor') wakeProcessor = undefined;
    else wakeFetcher = undefined;
    f?.();
  };
  const idle = (which: 'processor' | 'fetcher') =>
    new Promise<void>((resolve) => {
      if (which === 'processor') wakeProcessor = resolve;
      else wakeFetcher = resolve;
    });
  abort.signal.addEventListener('abort', () => {
    signal('processor');
    signal('fetcher');
  });
  let retryAt = 0;

  const fail = (err: unknown, msg: string, context: Record<string, unknown> = {}) => {
    backoff = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, backoff * 2));
    retryAt = Date.now() + backoff;
    logger.error({ err, ...context, retryInMs: backoff }, msg);
  };

  /** Applies one batch; true when committed and acknowledged. */
  const processBatch = async (batch: JsMsg[]): Promise<boolean> => {
    const raws = batch.map((m) => rawOf.get(m) ?? toRaw(m));
    const checks = new Set<Promise<void>>();
    for (const r of raws) {
      const c = checkOf.get(r);
      if (c) checks.add(c);
    }
    await Promise.all(checks);
    const first = raws[0]!.seq;
    const last = raws[raws.length - 1]!.seq;
    const started = Date.now();
    try {
      for (;;) {
        const r = await applyBatch(database.pool, raws, applyOpts);
        applied = Math.max(applied, r.lastSeq);
        progress.events += r.applied;
        for (const d of r.deadLetters) {
          logger.child({ seq: d.seq, ...(d.jid ? { jid: d.jid } : {}) }).warn({ subject: d.subject, error: d.error }, 'dead letter');
        }
        if (r.filled > 0 || r.missing > 0) {
          logger.info(
            { filled: r.filled, missing: r.missing, checkpoint: r.lastSeq },
            'filled a gap in the delivered sequence from the stream',
          );
        }
        if (r.mode === 'isolate') logger.warn({ firstSeq: first, lastSeq: last }, 'batch applied one message at a time after a data error');
        logger.debug(
          { firstSeq: first, lastSeq: last, count: raws.length, applied: r.applied, skipped: r.skipped, ms: Date.now() - started },
          'batch committed',
        );
        if (r.complete) break;
        for (const m of batch) m.working();
      }
    } catch (err) {
      fail(err, 'batch rolled back; will retry', { firstSeq: first, lastSeq: last });
      for (const m of batch) m.nak(backoff);
      return false;
    }
    if (ackAll) {
      // Everything up to the checkpoint is applied: the highest sequence of the batch acks it all.
      let top = batch[0]!;
      for (const m of batch) if (m.seq > top.seq) top = m;
      top.ack();
    } else {
      for (const m of batch) m.ack();
    }
    backoff = 0;
    const now = Date.now();
    if (now - progress.at >= PROGRESS_EVERY_MS) {
      logger.info({ checkpoint: applied, eventsPerSecond: Math.round((progress.events * 1000) / (now - progress.at)) }, 'progress');
      progress = { at: now, events: 0 };
    }
    return true;
  };

  /** Pulls messages into the queue, one bounded fetch at a time. */
  const fetcher = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      if (queue.length >= config.batch) {
        await idle('fetcher');
        continue;
      }
      if (Date.now() < retryAt) {
        await sleep(retryAt - Date.now(), abort.signal);
        continue;
      }
      let messages: ConsumerMessages;
      try {
        messages = await consumer.fetch({ max_messages: config.batch, expires: FETCH_EXPIRES_MS });
      } catch (err) {
        fail(err, 'fetch failed');
        if (isConsumerNotFound(err))
          await ensureConsumer(ledger.jsm, config.stream, config.consumer)
            .then(readAckPolicy)
            .catch(() => undefined);
        continue;
      }
      current = messages;
      try {
        for await (const m of messages) {
          if (abort.signal.aborted) m.nak();
          else {
            received(m);
            queue.push(m);
            signal('processor');
          }
        }
      } catch (err) {
        // The fetch itself failed (heartbeats missed, consumer deleted, connection closed).
        if (abort.signal.aborted) break;
        if (ledger.nc.isClosed()) throw err;
        fail(err, 'fetch ended with an error');
        await ensureConsumer(ledger.jsm, config.stream, config.consumer)
          .then(readAckPolicy)
          .catch(() => undefined);
      } finally {
        current = undefined;
      }
    }
  };

  /** Applies what the queue holds, up to a batch at a time, in one transaction each. */
  const processor = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      if (queue.length === 0) {
        await idle('processor');
        continue;
      }
      const batch = queue.splice(0, config.batch);
      signal('fetcher');
      const ok = await processBatch(batch);
      if (!ok) {
        // What came after the failed batch is handed back too, and fetching pauses for the back-off.
        for (const m of queue.splice(0)) m.nak(backoff);
        await sleep(backoff, abort.signal);
      }
    }
    // Stopping: the batch in flight is finished; what is only queued is handed back.
    for (const m of queue.splice(0)) m.nak();
  };

  const loop = async (): Promise<void> => {
    // Either side failing for good stops the other; the batch in flight still finishes.
    const settle = (p: Promise<void>) =>
      p.catch((err: unknown) => {
        abort.abort();
        throw err;
      });
    const results = await Promise.allSettled([settle(fetcher()), settle(processor())]);
    for (const m of queue.splice(0)) {
      try {
        m.nak();
      } catch {
        /* connection gone: the server redelivers after ack_wait */
      }
    }
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  };

  const done = loop();
  // Salt's clean_old_jobs on the read models; its transactions lock the checkpoint row as batches do.
  const retention = config.retention
    ? startRetention(database.pool, config.retention, logger.child({ component: 'retention' }), { checkpoint: config.consumer })
    : undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      abort.abort();
      void current?.close();
      try {
        await done;
      } catch {
        /* reported through `done` */
      }
      await retention?.stop();
      await workers?.close();
      await ledger.nc.drain().catch(() => undefined);
      await database.close().catch(() => undefined);
      logger.info({ checkpoint: applied }, 'projector stopped');
    })();
    return stopping;
  };
  // A loop that fails for good releases its resources too.
  done.catch(() => void stop());

  return { stop, appliedSeq: () => applied, done };
}
