import type pg from 'pg';
import { DeliverPolicy, type Consumer } from '@nats-io/jetstream';
import { eventReturnFilter, notImplementedText, runnerJobLoad, type Returner, type ReturnerEvent, type ReturnLoad } from '@jobledger/core';
import { ReturnerRegistry } from '@jobledger/returners';
import { ConfigError, openDatabase, openLedger, type Ledger, type Logger } from '@jobledger/runtime';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { ProjectorConfig } from './config.js';
import type { MasterReturnersConfig } from './master-config.js';
import { readCheckpoint } from './apply.js';
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

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

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
  logger: Logger;
}

export interface ReturnerFeed {
  /** `<role>:<returner>`, also its checkpoint row. */
  readonly name: string;
  /** The last stream sequence the returner has taken (and, at the latest after the batch, the checkpoint). */
  position(): number;
  /** Finishes the call in flight, writes the checkpoint of what was taken, then stops. Idempotent. */
  stop(): Promise<void>;
  /** Settles when the feed has stopped; rejects when it stopped for good on an error (a configuration error). */
  readonly done: Promise<void>;
}

const FETCH_EXPIRES_MS = 1_000;
/** An ordered consumer unused this long is made again (the server removes idle ones after 5 min). */
const CONSUMER_IDLE_MS = 60_000;

/** Runs one feed until stopped. */
export function startReturnerFeed(opts: ReturnerFeedOptions): ReturnerFeed {
  const name = feedName(opts.role, opts.returnerName);
  const logger = opts.logger.child({ feed: name, returner: opts.returnerName });
  const batch = opts.batch ?? 500;
  const { minMs, maxMs } = opts.backoff ?? { minMs: 500, maxMs: 15_000 };
  const abort = new AbortController();
  const { ledger, pool } = opts;
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
        const r = await (opts.returner as () => Promise<Returner>)();
        checkReturnerFunctions(opts.role, opts.returnerName, r);
        returner = r;
        await recovered('load', 'returner loaded');
      } catch (err) {
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
   * fewer when stopped (the call in flight is always finished).
   */
  const deliver = async (r: Returner, calls: FeedCall[]): Promise<number> => {
    for (let i = 0; i < calls.length; i++) {
      for (;;) {
        if (abort.signal.aborted) return i;
        const call = calls[i]!;
        try {
          await invoke(r, call);
          await recovered('returner', 'returner target back; feed resumed');
          break;
        } catch (err) {
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
      position = Math.max(position, calls[i]!.seq);
    }
    return calls.length;
  };

  const loop = async (): Promise<void> => {
    position = checkpointed = await readStoredPosition();
    const r = await getReturner();
    if (r === undefined) return;
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
      const calls = planFeedCalls(opts.role, raws, { masterId: opts.masterId, filter: opts.filter, maxEvents: batch });
      const done = await deliver(r, calls);
      if (done < calls.length) {
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
        await done.catch(() => undefined);
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
  stream: string;
  masterId: string;
  returners?: MasterReturnersConfig;
  batch?: number;
  backoff?: { minMs: number; maxMs: number };
}

export interface ReturnerFeeds {
  readonly feeds: readonly ReturnerFeed[];
  /** Stops every feed (each finishes its call in flight), then closes the returners and connections. */
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
    ledger = await openLedger({ natsUrl: config.natsUrl, stream: config.stream, name: 'jobledger-projector-returners' });
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
        await registry.closeAll().catch((err: unknown) => log.warn({ error: errorText(err) }, 'closing the returners failed'));
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
      { natsUrl: config.natsUrl, stream: config.stream, masterId: config.masterId, returners, batch: config.batch },
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
