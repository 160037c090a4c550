import type pg from 'pg';
import { largeReturnResolver } from './resolve-returns.js';
import { DeliverPolicy, type Consumer } from '@nats-io/jetstream';
import {
  eventReturnFilter,
  keepJobsSeconds,
  notImplementedText,
  runnerJobLoad,
  type Returner,
  type ReturnerEvent,
  type ReturnLoad,
} from '@jobledger/core';
import { ReturnerRegistry } from '@jobledger/returners';
import { ConfigError, openDatabase, openLedger, type Ledger, type Logger, type NatsAuth, sleepUnlessAborted } from '@jobledger/runtime';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ProjectorConfig } from './config.js';
import type { MasterReturnersConfig } from './master-config.js';
import { readCheckpoint } from './apply.js';
import { refusePgjsonbOnOwnDatabase } from './own-database-guard.js';
import { decodeMessage, publishLoad, type RawMessage } from './projections.js';

/**
 * Salt's `master_job_cache` and `event_return`, fed from the ledger instead of from an
 * in-memory queue: one feed per (role, returner), each reading the stream in order from its
 * own checkpoint (a `projector_checkpoint` row named `<role>:<returner>`), calling the
 * returner, and moving the checkpoint only once the returner has taken the events. So a
 * returner whose target is down (a database restarting) gets the same events again until it
 * takes them, and a projector that stops or dies resumes where its feeds left off: nothing is
 * dropped; an event may be handed to the returner twice after a crash (at least once — pgjsonb
 * stores an identical row once).
 *
 * - `master_job_cache:<name>`: `save_load(jid, publish load, minions)` for `job.published`,
 *   `returner(ret)` for `job.returned` (the master's full return load, with `cmd` and
 *   `_stamp`), and for a returned runner job what Salt's `store_job` does — `save_load` then
 *   `returner` of `{id: <master id>, tgt: <master id>, jid, return: <runner dict>, fun, user,
 *   success}` (the load the projection stores). Unlike Salt, `save_load` is not called again on
 *   each return: the publish load is never overwritten by a return load (Salt issues #57524,
 *   #66776).
 * - `event_return:<name>`: `event_return(events)` with `{tag, data}` of every event that
 *   passes `event_return_whitelist` / `event_return_blacklist` (and carries no `__peer_id`),
 *   up to `batch` per call.
 *
 * Failures. A `retryable` one (a ReturnerError with `retryable: true`, or any error that does
 * not say it is not retryable: when in doubt, nothing is skipped) holds the feed: it is logged
 * once per outage, the same events are retried with a capped exponential back-off, and the
 * recovery is logged with the outage's length and the events that waited. A non-retryable one
 * (data the target refuses) is logged at error with the stream sequence and jid — never the
 * payload — and the feed moves on; the event stays in the stream (which is never trimmed), so
 * it can be handed to the returner again by resetting the feed's checkpoint. An `event_return`
 * batch refused that way is retried one event at a time, so only the refused events are left out.
 *
 * A call that has not finished after `callTimeoutMs` (default 60 s) counts as a retryable
 * failure (the target hangs). `stop()` lets the call in flight finish for `stopGraceMs`
 * (default 10 s), then abandons it: the checkpoint records only the calls that completed.
 *
 * The checkpoint moves to a sequence only once every call of that sequence is done (a runner
 * job's `save_load` and `returner` share one), so a stop between them leaves it one before.
 *
 * Retention: with `keep_jobs_seconds` (or Salt's `keep_jobs` fallback) above 0, the
 * `master_job_cache` returner's `clean_old_jobs` is called every `loop_interval` seconds
 * (default 60), as Salt's master maintenance does; the returner reads its own `keep_jobs_seconds`
 * and `archive_jobs` from the configuration it was given. A failing clean is logged, never fatal.
 *
 * Events the projection records as dead letters (invalid ones) are not handed to returners.
 */

export type FeedRole = 'master_job_cache' | 'event_return';

/** One call of a returner function, and the stream sequences it covers. */
export type FeedCall =
  | { fn: 'save_load'; seq: number; jid: string; load: Record<string, unknown>; minions?: readonly string[] }
  | { fn: 'returner'; seq: number; jid: string; ret: ReturnLoad }
  | { fn: 'event_return'; seq: number; seqs: number[]; events: ReturnerEvent[] };

/** Salt's function names, for errors and logs. */
const SALT_FN: Record<FeedCall['fn'], string> = { save_load: 'save_load', returner: 'returner', event_return: 'event_return' };

/** The checkpoint row of a feed. */
export const feedName = (role: FeedRole, returner: string): string => `${role}:${returner}`;

export interface PlanOptions {
  masterId: string;
  /** `event_return` only: which events pass (default all; core's `eventReturnFilter`). */
  filter?: (event: ReturnerEvent) => boolean;
  /** `event_return` only: most events per call (default 500). */
  maxEvents?: number;
}

/** The returner calls for messages in stream order. Pure. */
export function planFeedCalls(role: FeedRole, messages: readonly RawMessage[], opts: PlanOptions): FeedCall[] {
  const calls: FeedCall[] = [];
  const maxEvents = opts.maxEvents ?? 500;
  let pending: Extract<FeedCall, { fn: 'event_return' }> | undefined;
  for (const m of messages) {
    const d = decodeMessage(m);
    if (!d.ok) continue; // a dead letter of the projection
    const event = d.event;
    if (role === 'event_return') {
      const e: ReturnerEvent = { tag: event.tag, data: event.data };
      if (opts.filter && !opts.filter(e)) continue;
      if (pending === undefined || pending.events.length >= maxEvents) {
        pending = { fn: 'event_return', seq: d.seq, seqs: [], events: [] };
        calls.push(pending);
      }
      pending.seq = d.seq;
      pending.seqs.push(d.seq);
      pending.events.push(e);
      continue;
    }
    switch (event.type) {
      case 'job.published':
        calls.push({ fn: 'save_load', seq: d.seq, jid: event.data.jid, load: publishLoad(event.data), minions: event.data.minions });
        break;
      case 'job.returned':
        calls.push({ fn: 'returner', seq: d.seq, jid: event.data.jid, ret: event.data });
        break;
      case 'runner.returned': {
        const load = runnerJobLoad(opts.masterId, event.data);
        calls.push({ fn: 'save_load', seq: d.seq, jid: event.data.jid, load, minions: [opts.masterId] });
        // Salt's runner job load has no `fun_args`; it is stored as it is.
        calls.push({ fn: 'returner', seq: d.seq, jid: event.data.jid, ret: load as ReturnLoad });
        break;
      }
      default:
        // proc.*, agent.started, runner.published: nothing for the job cache.
        break;
    }
  }
  return calls;
}

/** The returner functions a role needs, in Salt's names; a missing one is a configuration error. */
export function checkReturnerFunctions(role: FeedRole, name: string, returner: Returner): void {
  const needs: [keyof Returner, string][] =
    role === 'master_job_cache'
      ? [
          ['saveLoad', 'save_load'],
          ['returner', 'returner'],
        ]
      : [['eventReturn', 'event_return']];
  for (const [fn, salt] of needs) {
    if (typeof returner[fn] !== 'function') throw new ConfigError(`${role}: ${notImplementedText(name, salt)}`);
  }
}

/** A returner failure worth retrying: its `retryable` flag, and true when it has none. */
export function isRetryable(err: unknown): boolean {
  const flag = (err as { retryable?: unknown } | null)?.retryable;
  return typeof flag === 'boolean' ? flag : true;
}

/** The delay after the n-th consecutive failure (n ≥ 1): min·2^(n-1), at most max. */
export function backoffMs(failures: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
}

async function invoke(returner: Returner, call: FeedCall): Promise<void> {
  switch (call.fn) {
    case 'save_load':
      return returner.saveLoad!(call.jid, call.load, call.minions);
    case 'returner':
      return returner.returner(call.ret);
    case 'event_return':
      return returner.eventReturn!(call.events);
  }
}

const errorText = (err: unknown): string => {
  const e = err as { message?: unknown; cause?: unknown } | null;
  const msg = typeof e?.message === 'string' ? e.message : String(err);
  const cause = (e?.cause as { message?: unknown } | undefined)?.message;
  return typeof cause === 'string' && !msg.includes(cause) ? `${msg}: ${cause}` : msg;
};

const sleep = sleepUnlessAborted;

/** A returner call that took longer than the feed allows: retried like a target that is down. */
export class ReturnerCallTimeoutError extends Error {
  override readonly name = 'ReturnerCallTimeoutError';
  readonly retryable = true;
}

/** The call in flight was given up because the feed is stopping (its grace period is over). */
class CallAbandoned extends Error {
  override readonly name = 'CallAbandoned';
  readonly retryable = false;
}

/**
 * `work`, or a ReturnerCallTimeoutError after `ms`, or CallAbandoned when `abandon` fires. The
 * work itself cannot be cancelled: a late failure of it is ignored.
 */
function bounded<T>(work: Promise<T>, ms: number, what: string, abandon: AbortSignal): Promise<T> {
  work.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  let onAbandon: (() => void) | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ReturnerCallTimeoutError(`${what} did not finish within ${ms} ms`)), ms);
    timer.unref();
    onAbandon = () => reject(new CallAbandoned(`${what} abandoned: the feed is stopping`));
    if (abandon.aborted) onAbandon();
    else abandon.addEventListener('abort', onAbandon, { once: true });
  });
  return Promise.race([work, limit]).finally(() => {
    clearTimeout(timer);
    abandon.removeEventListener('abort', onAbandon!);
  });
}

/**
 * The last sequence all of whose calls are among the first `done` of `calls` (in stream
 * order), or `from` when none is: calls sharing a sequence are done together or not at all.
 */
export function positionAfter(calls: readonly FeedCall[], done: number, from: number): number {
  if (done <= 0) return from;
  const last = calls[done - 1]!.seq;
  const next = calls[done];
  return Math.max(from, next !== undefined && next.seq === last ? last - 1 : last);
}

/** Salt's `loop_interval` (seconds, default 60) in milliseconds; ConfigError when not a positive number. */
export function loopIntervalMs(mapping: Readonly<Record<string, unknown>>, file: string): number {
  const v = mapping['loop_interval'];
  if (v === undefined || v === null || v === '') return 60_000;
  const n = Number(v);
  if (typeof v === 'boolean' || !Number.isFinite(n) || n <= 0) {
    throw new ConfigError(`loop_interval in ${file} must be a positive number of seconds, got ${JSON.stringify(v)}`);
  }
  return n * 1000;
}

/** When `clean_old_jobs` runs: every `loop_interval`, only while `keep_jobs_seconds` (Salt's way) is above 0. */
export function cleanOldJobsEveryMs(mapping: Readonly<Record<string, unknown>>, file: string): number | undefined {
  const keep = keepJobsSeconds(mapping);
  if (!Number.isFinite(keep)) throw new ConfigError(`keep_jobs_seconds / keep_jobs in ${file} must be numbers`);
  return keep > 0 ? loopIntervalMs(mapping, file) : undefined;
}

const UPSERT_CHECKPOINT = `INSERT INTO projector_checkpoint (name, last_seq, updated_at) VALUES ($1, $2, now())
ON CONFLICT (name) DO UPDATE SET last_seq = greatest(projector_checkpoint.last_seq, EXCLUDED.last_seq), updated_at = now()`;

export interface ReturnerFeedOptions {
  role: FeedRole;
  /** The returner's name. */
  returnerName: string;
  /** The returner, or how to get it (tried again, with the back-off, while it fails retryably). */
  returner: Returner | (() => Promise<Returner>);
  ledger: Ledger;
  /** Holds `projector_checkpoint`. */
  pool: pg.Pool;
  masterId: string;
  /** `event_return`: which events pass (`event_return_whitelist` / `_blacklist`, `__peer_id`). */
  filter?: (event: ReturnerEvent) => boolean;
  /** Stream messages read at a time, and most events per `event_return` call (default 500). */
  batch?: number;
  /** Back-off between retries of a failing returner (default 500 ms doubling up to 15 s). */
  backoff?: { minMs: number; maxMs: number };
  /** How long one returner call (or loading the returner) may take before it counts as a retryable failure (default 60 s). */
  callTimeoutMs?: number;
  /** How long `stop()` lets the call in flight finish before abandoning it (default 10 s). */
  stopGraceMs?: number;
  /** `master_job_cache`: call the returner's `cleanOldJobs` this often (Salt's `loop_interval`); unset: never. */
  cleanOldJobsEveryMs?: number;
  logger: Logger;
}

export interface ReturnerFeed {
  /** `<role>:<returner>`, also its checkpoint row. */
  readonly name: string;
  /** The last stream sequence the returner has taken (and, at the latest after the batch, the checkpoint). */
  position(): number;
  /**
   * Finishes the call in flight (abandoning it after the stop grace period), writes the
   * checkpoint of what was taken, then stops. Idempotent.
   */
  stop(): Promise<void>;
  /** Settles when the feed has stopped; rejects when it stopped for good on an error (a configuration error). */
  readonly done: Promise<void>;
}

const FETCH_EXPIRES_MS = 1_000;
/** How long `stop()` lets a returner call (or the returners' close) finish before giving it up. */
const DEFAULT_STOP_GRACE_MS = 10_000;
/** An ordered consumer unused this long is made again (the server removes idle ones after 5 min). */
const CONSUMER_IDLE_MS = 60_000;

/** Runs one feed until stopped. */
export function startReturnerFeed(opts: ReturnerFeedOptions): ReturnerFeed {
  const name = feedName(opts.role, opts.returnerName);
  const logger = opts.logger.child({ feed: name, returner: opts.returnerName });
  const batch = opts.batch ?? 500;
  const { minMs, maxMs } = opts.backoff ?? { minMs: 500, maxMs: 15_000 };
  const callTimeoutMs = opts.callTimeoutMs ?? 60_000;
  const stopGraceMs = opts.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
  const abort = new AbortController();
  /** Fired `stopGraceMs` after stop(): the call in flight is given up. */
  const abandon = new AbortController();
  const { ledger, pool } = opts;
  const resolveBody = largeReturnResolver(ledger);
  let position = 0;
  let checkpointed = 0;
  let returner: Returner | undefined = typeof opts.returner === 'function' ? undefined : opts.returner;

  /** An outage of the returner's target (or of the stream, or of the checkpoint's database). */
  interface Outage {
    since: number;
    failures: number;
    firstSeq: number;
  }
  const outages = new Map<string, Outage>();
  const failed = async (what: string, err: unknown, seq: number, msg: string): Promise<void> => {
    let o = outages.get(what);
    if (o === undefined) {
      o = { since: Date.now(), failures: 0, firstSeq: seq };
      outages.set(what, o);
    }
    o.failures++;
    const delay = backoffMs(o.failures, minMs, maxMs);
    if (o.failures === 1) logger.error({ seq, error: errorText(err), retryInMs: delay }, msg);
    else logger.debug({ seq, error: errorText(err), failures: o.failures, retryInMs: delay }, msg);
    await sleep(delay, abort.signal);
  };
  const recovered = async (what: string, msg: string): Promise<void> => {
    const o = outages.get(what);
    if (o === undefined) return;
    outages.delete(what);
    let waiting: number | undefined;
    try {
      waiting = (await ledger.jsm.streams.info(ledger.stream)).state.last_seq - o.firstSeq + 1;
    } catch {
      /* the count is only for the log */
    }
    logger.warn({ outageMs: Date.now() - o.since, failures: o.failures, eventsWaiting: waiting, fromSeq: o.firstSeq }, msg);
  };

  const getReturner = async (): Promise<Returner | undefined> => {
    while (returner === undefined && !abort.signal.aborted) {
      try {
        const r = await bounded(
          (opts.returner as () => Promise<Returner>)(),
          callTimeoutMs,
          `loading '${opts.returnerName}'`,
          abandon.signal,
        );
        checkReturnerFunctions(opts.role, opts.returnerName, r);
        returner = r;
        await recovered('load', 'returner loaded');
      } catch (err) {
        if (err instanceof CallAbandoned) return undefined;
        if (err instanceof ConfigError || !isRetryable(err)) throw err;
        await failed('load', err, position + 1, 'cannot load the returner; retrying');
      }
    }
    return returner;
  };

  const saveCheckpoint = async (seq: number): Promise<void> => {
    for (;;) {
      try {
        await pool.query(UPSERT_CHECKPOINT, [name, seq]);
        checkpointed = seq;
        await recovered('checkpoint', 'feed checkpoint written again');
        return;
      } catch (err) {
        // Stopping: one attempt only; the events after the stored checkpoint are handed over again at the next start.
        if (abort.signal.aborted) {
          logger.warn({ seq, error: errorText(err) }, 'cannot write the feed checkpoint while stopping');
          return;
        }
        await failed('checkpoint', err, seq, 'cannot write the feed checkpoint; retrying');
      }
    }
  };

  /**
   * Hands the calls to the returner in order. Returns how many were done: all of them, or
   * fewer when stopped (the call in flight is finished, or abandoned after the stop grace period).
   */
  const deliver = async (r: Returner, calls: FeedCall[]): Promise<number> => {
    for (let i = 0; i < calls.length; i++) {
      for (;;) {
        if (abort.signal.aborted) return i;
        const call = calls[i]!;
        try {
          await bounded(invoke(r, call), callTimeoutMs, `'${opts.returnerName}.${SALT_FN[call.fn]}'`, abandon.signal);
          await recovered('returner', 'returner target back; feed resumed');
          break;
        } catch (err) {
          if (err instanceof CallAbandoned) {
            logger.warn({ seq: call.seq, stopGraceMs }, 'returner call still running at the end of the stop grace period; abandoned');
            return i;
          }
          if (isRetryable(err)) {
            await failed('returner', err, call.seq, 'returner target unavailable; holding its events and retrying');
            continue;
          }
          if (call.fn === 'event_return' && call.events.length > 1) {
            // Find the refused events: one call per event.
            const single: FeedCall[] = call.events.map((e, k) => ({
              fn: 'event_return',
              seq: call.seqs[k]!,
              seqs: [call.seqs[k]!],
              events: [e],
            }));
            logger.warn(
              { firstSeq: call.seqs[0], lastSeq: call.seq, error: errorText(err) },
              'event_return refused a batch; retrying one event at a time',
            );
            calls.splice(i, 1, ...single);
            continue;
          }
          logger
            .child({ seq: call.seq, ...('jid' in call ? { jid: call.jid } : {}) })
            .error({ function: SALT_FN[call.fn], error: errorText(err) }, 'the returner refused an event; it is left out of this returner');
          break;
        }
      }
      // A sequence is taken once all its calls are (a runner job's save_load and returner).
      position = positionAfter(calls, i + 1, position);
    }
    return calls.length;
  };

  /**
   * Salt's maintenance `clean_old_jobs` of the job cache: every `cleanOldJobsEveryMs`, one at a
   * time (a clean still running when the next is due is not started twice; one running longer
   * than the call timeout is logged, not abandoned: a large purge may take long).
   */
  let cleanTimer: NodeJS.Timeout | undefined;
  let cleaning: Promise<void> | undefined;
  const startCleaning = (r: Returner): void => {
    const every = opts.cleanOldJobsEveryMs;
    if (every === undefined || typeof r.cleanOldJobs !== 'function' || abort.signal.aborted) return;
    cleanTimer = setInterval(() => {
      if (cleaning !== undefined || abort.signal.aborted) return;
      const t0 = Date.now();
      const slow = setTimeout(() => logger.warn({ ms: Date.now() - t0 }, 'clean_old_jobs still running'), callTimeoutMs);
      slow.unref();
      cleaning = Promise.resolve()
        .then(() => r.cleanOldJobs!())
        .then(
          () => logger.debug({ ms: Date.now() - t0 }, 'clean_old_jobs done'),
          (err: unknown) => logger.error({ error: errorText(err) }, 'clean_old_jobs failed; tried again at the next interval'),
        )
        .finally(() => {
          clearTimeout(slow);
          cleaning = undefined;
        });
    }, every);
    cleanTimer.unref();
  };

  const loop = async (): Promise<void> => {
    position = checkpointed = await readStoredPosition();
    const r = await getReturner();
    if (r === undefined) return;
    startCleaning(r);
    logger.info({ fromSeq: position + 1 }, 'returner feed started');
    let consumer: Consumer | undefined;
    let lastFetch = 0;
    while (!abort.signal.aborted) {
      const raws: RawMessage[] = [];
      try {
        if (consumer === undefined || Date.now() - lastFetch > CONSUMER_IDLE_MS) {
          consumer = await ledger.js.consumers.get(ledger.stream, {
            deliver_policy: DeliverPolicy.StartSequence,
            opt_start_seq: position + 1,
          });
        }
        lastFetch = Date.now();
        const messages = await consumer.fetch({ max_messages: batch, expires: FETCH_EXPIRES_MS });
        for await (const m of messages) {
          if (m.seq > position) raws.push({ seq: m.seq, subject: m.subject, data: m.data, time: m.time });
        }
        await recovered('stream', 'reading the stream again');
      } catch (err) {
        if (abort.signal.aborted) break;
        consumer = undefined;
        await failed('stream', err, position + 1, 'cannot read the stream; retrying');
        continue;
      }
      if (raws.length === 0) continue;
      // Large returns are read back from the object store: the returner gets the whole return.
      try {
        for (const m of raws) m.data = await resolveBody(m);
      } catch (err) {
        if (abort.signal.aborted) break;
        consumer = undefined;
        await failed('stream', err, position + 1, 'cannot read a large return from the object store; retrying');
        continue;
      }
      const calls = planFeedCalls(opts.role, raws, { masterId: opts.masterId, filter: opts.filter, maxEvents: batch });
      const done = await deliver(r, calls);
      if (done < calls.length) {
        // (deliver has moved `position` past the sequences whose calls are all done.)
        // Stopped in the middle: what was taken is recorded; the rest is read again next time.
        if (position > checkpointed) await saveCheckpoint(position);
        break;
      }
      position = Math.max(position, raws[raws.length - 1]!.seq);
      await saveCheckpoint(position);
      lastFetch = Date.now();
    }
  };

  /** The stored checkpoint; a feed without one starts at the stream's first sequence. */
  const readStoredPosition = async (): Promise<number> => {
    for (;;) {
      try {
        const stored = await readCheckpoint(pool, name);
        const first = (await ledger.jsm.streams.info(ledger.stream)).state.first_seq;
        const at = Math.max(stored, first - 1);
        await recovered('start', 'feed checkpoint read');
        return at;
      } catch (err) {
        if (abort.signal.aborted) return 0;
        await failed('start', err, 0, 'cannot read the feed checkpoint; retrying');
      }
    }
  };

  const done = loop().catch((err: unknown) => {
    logger.error({ error: errorText(err) }, 'returner feed stopped on an error; the projection goes on without it');
    throw err;
  });
  // A feed that stops on an error (a returner loaded late that lacks a function) is logged
  // above and leaves the projection running: it is not an unhandled rejection.
  done.catch(() => undefined);
  let stopping: Promise<void> | undefined;
  return {
    name,
    position: () => position,
    done,
    stop: () => {
      stopping ??= (async () => {
        abort.abort();
        clearInterval(cleanTimer);
        const grace = setTimeout(() => abandon.abort(), stopGraceMs);
        grace.unref();
        const abandoned = new Promise<void>((resolve) => abandon.signal.addEventListener('abort', () => resolve(), { once: true }));
        await Promise.all([done.catch(() => undefined), cleaning === undefined ? undefined : Promise.race([cleaning, abandoned])]);
        clearTimeout(grace);
        logger.info({ position }, 'returner feed stopped');
      })();
      return stopping;
    },
  };
}

/** Where feeds get their returners: `@jobledger/returners`' ReturnerRegistry. */
export interface ReturnerSource {
  get(name: string, opts?: { retConfig?: string; retKwargs?: Record<string, unknown> }): Promise<Returner>;
  closeAll(): Promise<void>;
}

export interface ReturnerFeedsConfig {
  natsUrl: string;
  natsAuth?: NatsAuth;
  stream: string;
  masterId: string;
  returners?: MasterReturnersConfig;
  batch?: number;
  backoff?: { minMs: number; maxMs: number };
  callTimeoutMs?: number;
  stopGraceMs?: number;
}

export interface ReturnerFeeds {
  readonly feeds: readonly ReturnerFeed[];
  /**
   * Stops every feed (each finishes its call in flight, or abandons it after the stop grace
   * period), then closes the returners (waiting at most the grace period) and connections.
   */
  stop(): Promise<void>;
}

/** The (role, returner) pairs a master configuration asks for. */
export function configuredFeeds(config: MasterReturnersConfig | undefined): { role: FeedRole; name: string }[] {
  if (config === undefined) return [];
  return [
    ...(config.masterJobCache === undefined ? [] : [{ role: 'master_job_cache' as const, name: config.masterJobCache }]),
    ...config.eventReturn.map((name) => ({ role: 'event_return' as const, name })),
  ];
}

/**
 * Starts the feeds of the master configuration. A returner that does not exist or lacks a
 * function its role needs is a configuration error (thrown); one whose target is down is
 * retried by its feed in the background, so the projection never waits for it.
 */
export async function startReturnerFeeds(
  config: ReturnerFeedsConfig,
  pool: pg.Pool,
  registry: ReturnerSource,
  logger: Logger,
): Promise<ReturnerFeeds> {
  const wanted = configuredFeeds(config.returners);
  if (wanted.length === 0) return { feeds: [], stop: () => registry.closeAll() };
  const file = config.returners!.file;
  const log = logger.child({ component: 'returners' });
  let cleanEvery: number | undefined;
  try {
    if (config.returners!.masterJobCache !== undefined) cleanEvery = cleanOldJobsEveryMs(config.returners!.mapping, file);
  } catch (err) {
    await registry.closeAll().catch(() => undefined);
    throw err;
  }

  // Each returner is asked for once here, so a configuration error stops the start.
  const first = new Map<string, Returner | (() => Promise<Returner>)>();
  try {
    for (const { role, name } of wanted) {
      const key = feedName(role, name);
      try {
        const r = await registry.get(name);
        checkReturnerFunctions(role, name, r);
        first.set(key, r);
      } catch (err) {
        if (err instanceof ConfigError) throw new ConfigError(`${err.message} (${file})`, { cause: err });
        if (!isRetryable(err)) throw new ConfigError(`${role}: ${errorText(err)} (${file})`, { cause: err });
        log.error({ feed: key, error: errorText(err) }, 'cannot load the returner yet; its feed will retry');
        first.set(key, () => registry.get(name));
      }
    }
  } catch (err) {
    await registry.closeAll().catch(() => undefined);
    throw err;
  }

  let ledger: Ledger;
  try {
    ledger = await openLedger({
      natsUrl: config.natsUrl,
      stream: config.stream,
      name: 'jobledger-projector-returners',
      auth: config.natsAuth,
    });
  } catch (err) {
    await registry.closeAll().catch(() => undefined);
    throw err;
  }
  const feeds = wanted.map(({ role, name }) =>
    startReturnerFeed({
      role,
      returnerName: name,
      returner: first.get(feedName(role, name))!,
      ledger,
      pool,
      masterId: config.masterId,
      ...(role === 'event_return'
        ? { filter: eventReturnFilter(config.returners!.eventReturnWhitelist, config.returners!.eventReturnBlacklist) }
        : {}),
      ...(config.batch === undefined ? {} : { batch: config.batch }),
      ...(config.backoff === undefined ? {} : { backoff: config.backoff }),
      ...(config.callTimeoutMs === undefined ? {} : { callTimeoutMs: config.callTimeoutMs }),
      ...(config.stopGraceMs === undefined ? {} : { stopGraceMs: config.stopGraceMs }),
      ...(role === 'master_job_cache' && cleanEvery !== undefined ? { cleanOldJobsEveryMs: cleanEvery } : {}),
      logger: log,
    }),
  );
  log.info({ feeds: feeds.map((f) => f.name), config: file }, 'returner feeds started (the configuration file is read at start only)');
  let stopping: Promise<void> | undefined;
  return {
    feeds,
    stop: () => {
      stopping ??= (async () => {
        await Promise.allSettled(feeds.map((f) => f.stop()));
        // A returner whose call was abandoned may not close (a pool waiting for its query): bounded too.
        const grace = config.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
        let timer: NodeJS.Timeout | undefined;
        const closed = await Promise.race([
          registry.closeAll().then(
            () => true,
            (err: unknown) => {
              log.warn({ error: errorText(err) }, 'closing the returners failed');
              return true;
            },
          ),
          new Promise<false>((resolve) => {
            timer = setTimeout(() => resolve(false), grace);
            timer.unref();
          }),
        ]);
        clearTimeout(timer);
        if (!closed) log.warn({ stopGraceMs: grace }, 'returners still closing after the stop grace period; not waited for');
        await ledger.nc.drain().catch(() => undefined);
      })();
      return stopping;
    },
  };
}

/**
 * The feeds of the projector's configuration (`master.yaml`, read at start), with the built-in
 * returners and the plugin files of `<extension_modules>/returners`, their checkpoints in the
 * projector's database through a pool of their own. Nothing configured: nothing started.
 */
export async function startProjectorReturnerFeeds(config: ProjectorConfig, logger: Logger): Promise<ReturnerFeeds> {
  if (configuredFeeds(config.returners).length === 0) return { feeds: [], stop: async () => undefined };
  const returners = config.returners!;
  refusePgjsonbOnOwnDatabase(configuredFeeds(returners), returners.mapping, returners.file, config.databaseUrl);
  const registry = new ReturnerRegistry({
    role: 'master',
    hostId: config.masterId,
    config: returners.mapping,
    logger: logger.child({ component: 'returners' }),
    // Salt's `<extension_modules>/returners`, when there is one.
    extensionDirs: [path.join(returners.extensionModules, 'returners')].filter((dir) => existsSync(dir)),
  });
  const database = openDatabase(config.databaseUrl, { max: 2 });
  let feeds: ReturnerFeeds;
  try {
    feeds = await startReturnerFeeds(
      {
        natsUrl: config.natsUrl,
        natsAuth: config.natsAuth,
        stream: config.stream,
        masterId: config.masterId,
        returners,
        batch: config.batch,
      },
      database.pool,
      registry,
      logger,
    );
  } catch (err) {
    await database.close().catch(() => undefined);
    throw err;
  }
  return {
    feeds: feeds.feeds,
    stop: async () => {
      await feeds.stop();
      await database.close().catch(() => undefined);
    },
  };
}
