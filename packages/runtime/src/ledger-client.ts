import { setTimeout as delay } from 'node:timers/promises';
import { NoRespondersError, nuid, RequestError, TimeoutError, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { connectNats, SHORT_PULLS, type NatsAuth } from './nats-connect.js';
import { jetstream, jetstreamManager, DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import {
  apiSubjects,
  CHUNKS_HEADER,
  decodeEvent,
  joinChunks,
  publishReply,
  runnerReply,
  subjects,
  type JobReturnedData,
  type LedgerEvent,
  type PublishReply,
  type PublishRequestInput,
  type RunnerReply,
  type RunnerRequestInput,
} from '@jobledger/core';

/** Salt's texts for a master that cannot be reached. */
export const MASTER_UNREACHABLE = 'Failed to connect to the Master, is the Salt Master running?';

export class MasterUnreachableError extends Error {
  override readonly name = 'MasterUnreachableError';
  readonly retryable = true;
}

/** A request larger than the server's `max_payload`: it would never reach the master. */
export class RequestTooLargeError extends Error {
  override readonly name = 'RequestTooLargeError';
  readonly retryable = false;
}

const encoder = new TextEncoder();

/** How long the CLI waits for JetStream to answer again (a leader election) before giving up. */
const ELECTION_RETRY_MS = 15_000;

/**
 * One attempt of a publish request: a reply not there by then is taken for a dispatcher that
 * died holding it, and the request is sent again with the same `request_id` (the job is stored
 * once). A dispatcher answers in milliseconds, and within 12 s during a leader election.
 */
const PUBLISH_ATTEMPT_MS = 5_000;
/** How long "no dispatcher listening" is asked again: a dispatcher being restarted. */
const NO_RESPONDERS_RETRY_MS = 5_000;

/** A request nobody listens to: no dispatcher subscribed. */
function noResponders(err: unknown): boolean {
  return err instanceof RequestError && err.isNoResponders();
}

/** A runner call without a (whole) answer in time. */
export class RunnerTimeoutError extends Error {
  override readonly name = 'RunnerTimeoutError';
  readonly retryable = true;
}

/**
 * The master's request APIs and the job returns, for the clients of the ledger: the CLI (as the
 * operator, on `jobledger.api.*`) and the HTTP API (for its eauth users, on `jobledger.netapi.*`).
 */
export class LedgerClient {
  private constructor(
    readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly stream: string,
  ) {}

  static async connect(natsUrl: string, stream: string, auth?: NatsAuth, name = 'jobledger-cli'): Promise<LedgerClient> {
    let nc: NatsConnection;
    try {
      nc = await connectNats({ servers: natsUrl, name, timeout: 3000, auth });
    } catch (cause) {
      throw new MasterUnreachableError(MASTER_UNREACHABLE, { cause });
    }
    return new LedgerClient(nc, jetstream(nc), stream);
  }

  /**
   * Sends a publish request and returns the dispatcher's reply. No reply within an attempt, or
   * no dispatcher listening (for up to 5 s), and the same request (one `request_id`) is sent
   * again, until `timeoutMs`.
   */
  async publish(
    req: PublishRequestInput & { eauth?: string },
    timeoutMs = 20_000,
    subject: string = apiSubjects.publish,
  ): Promise<PublishReply> {
    const payload = encoder.encode(JSON.stringify({ ...req, request_id: req.request_id ?? nuid.next() }));
    const max = this.nc.info?.max_payload;
    if (max !== undefined && payload.length > max) {
      throw new RequestTooLargeError(
        `the job is ${payload.length} bytes; the master accepts at most ${max} bytes (nats-server max_payload)`,
      );
    }
    const started = Date.now();
    const deadline = started + timeoutMs;
    for (;;) {
      const left = Math.max(100, deadline - Date.now()); // after a no-responders pause, still one real attempt
      try {
        const body: unknown = (await this.nc.request(subject, payload, { timeout: Math.min(PUBLISH_ATTEMPT_MS, left) })).json();
        return publishReply.parse(body);
      } catch (cause) {
        const again =
          (cause instanceof TimeoutError && deadline - Date.now() > 0) ||
          (noResponders(cause) && Date.now() - started < Math.min(NO_RESPONDERS_RETRY_MS, timeoutMs));
        if (!again) throw new MasterUnreachableError(MASTER_UNREACHABLE, { cause });
        if (noResponders(cause)) await delay(250);
      }
    }
  }

  /** Sends a runner request and reads the chunked reply (see core `api/runner.ts`). */
  async runner(
    req: RunnerRequestInput & { eauth?: string },
    timeoutMs: number,
    subject: string = apiSubjects.runner,
  ): Promise<RunnerReply> {
    let replies: AsyncIterable<Msg>;
    try {
      replies = await this.nc.requestMany(subject, JSON.stringify(req), { strategy: 'sentinel', maxWait: timeoutMs });
    } catch (cause) {
      throw new MasterUnreachableError(MASTER_UNREACHABLE, { cause });
    }
    const chunks: Uint8Array[] = [];
    let expected: number | undefined;
    let complete = false;
    try {
      for await (const m of replies) {
        if (m.data.length === 0 && !m.headers?.has(CHUNKS_HEADER)) {
          complete = true;
          break;
        }
        expected = Number(m.headers?.get(CHUNKS_HEADER) ?? 1);
        chunks.push(m.data);
      }
    } catch (cause) {
      if (cause instanceof NoRespondersError) throw new MasterUnreachableError(MASTER_UNREACHABLE, { cause });
      throw cause;
    }
    if (!complete || chunks.length !== expected) {
      throw new RunnerTimeoutError(
        chunks.length === 0
          ? `The master did not answer within ${timeoutMs / 1000} s.`
          : `The master's answer was cut short (${chunks.length} of ${expected ?? '?'} parts).`,
      );
    }
    return runnerReply.parse(JSON.parse(new TextDecoder().decode(joinChunks(chunks))));
  }

  /**
   * Every return of a job, read from the stream from the job's own publication on, so a
   * return stored before the CLI started listening is still seen. Ends when `signal` aborts.
   */
  async *returns(jid: string, fromSeq: number, signal: AbortSignal): AsyncGenerator<JobReturnedData> {
    const messages = await this.consumeReturns(jid, fromSeq);
    const stop = () => void messages.stop();
    if (signal.aborted) stop();
    signal.addEventListener('abort', stop, { once: true });
    try {
      for await (const m of messages) {
        if (signal.aborted) break;
        let event;
        try {
          event = decodeEvent(m.data);
        } catch {
          continue; // quarantined by the projector; nothing to print
        }
        if (event.type === 'job.returned') yield await this.withReturn(event.data);
      }
    } finally {
      signal.removeEventListener('abort', stop);
      stop();
    }
  }

  /**
   * Calls `onReturn` with every return of a job stored from stream sequence `fromSeq` on (an
   * ordered consumer, so a return stored before this started is still delivered), until the
   * returned watch is stopped.
   */
  async watchReturns(jid: string, fromSeq: number, onReturn: (ret: JobReturnedData) => void): Promise<{ stop(): Promise<void> }> {
    const messages = await this.consumeReturns(jid, fromSeq);
    const loop = (async () => {
      for await (const m of messages) {
        let event;
        try {
          event = decodeEvent(m.data);
        } catch {
          continue; // quarantined by the projector; nothing to print
        }
        if (event.type === 'job.returned') onReturn(await this.withReturn(event.data));
      }
    })().catch(() => undefined); // the consumer ends with the connection
    let stopped: Promise<void> | undefined;
    return {
      stop: () => {
        stopped ??= (async () => {
          messages.stop();
          await loop;
        })();
        return stopped;
      },
    };
  }

  /**
   * Every event of the ledger from stream sequence `fromSeq` on (undefined: from the next one
   * stored), through an ordered consumer: the HTTP API's event feed.
   */
  consumeAll(fromSeq: number | undefined) {
    return this.whileElecting(async () => {
      const consumer = await this.js.consumers.get(
        this.stream,
        fromSeq === undefined
          ? { deliver_policy: DeliverPolicy.New }
          : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, fromSeq) },
      );
      return consumer.consume({ max_messages: 256, ...SHORT_PULLS });
    });
  }

  private jsm: Promise<JetStreamManager> | undefined;

  /** A job's `job.published` event, read by subject (undefined: none, or not an event). */
  async jobPublication(jid: string): Promise<Extract<LedgerEvent, { type: 'job.published' }> | undefined> {
    this.jsm ??= jetstreamManager(this.nc);
    const m = await (await this.jsm).direct.getMessage(this.stream, { last_by_subj: subjects.jobNew(jid) });
    if (m === null) return undefined;
    try {
      const event = decodeEvent(m.data);
      return event.type === 'job.published' ? event : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * A job's events as the stream holds them (`ledger.job.<jid>.>`, in stream order, at most
   * `max`): its audit trail. A message that is not an event is listed with `event` undefined.
   */
  async jobTrail(jid: string, max = 2000): Promise<Array<{ seq: number; subject: string; time: Date; event?: LedgerEvent }>> {
    const consumer = await this.whileElecting(() =>
      this.js.consumers.get(this.stream, { filter_subjects: `ledger.job.${jid}.>`, deliver_policy: DeliverPolicy.All }),
    );
    const out: Array<{ seq: number; subject: string; time: Date; event?: LedgerEvent }> = [];
    const info = await consumer.info(true);
    if (info.num_pending === 0) return out;
    const messages = await consumer.fetch({ max_messages: Math.min(max, info.num_pending), expires: 2_000 });
    for await (const m of messages) {
      let event: LedgerEvent | undefined;
      try {
        event = decodeEvent(m.data);
      } catch {
        event = undefined;
      }
      out.push({ seq: m.seq, subject: m.subject, time: new Date(Math.floor(m.info.timestampNanos / 1e6)), ...(event ? { event } : {}) });
      if (m.info.pending === 0 || out.length >= max) break;
    }
    return out;
  }

  /** An ordered consumer of the job's returns from its publication on. */
  private consumeReturns(jid: string, fromSeq: number) {
    return this.whileElecting(async () => {
      const consumer = await this.js.consumers.get(this.stream, {
        filter_subjects: `ledger.job.${jid}.ret.*`,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: Math.max(1, fromSeq),
      });
      return consumer.consume({ max_messages: 256, ...SHORT_PULLS });
    });
  }

  /**
   * Asks again, for up to 15 s, while JetStream does not answer (a cluster electing a leader, a
   * restarting server); then says the master cannot be reached.
   */
  private async whileElecting<T>(fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + ELECTION_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (cause) {
        const transient = cause instanceof TimeoutError || (cause instanceof Error && cause.name === 'JetStreamNotEnabled');
        if (!transient || this.nc.isClosed()) throw cause;
        if (Date.now() >= deadline) throw new MasterUnreachableError(MASTER_UNREACHABLE, { cause });
        await new Promise((r) => setTimeout(r, Math.min(1_000, 100 * attempt)));
      }
    }
  }

  /** A return kept in the object store (too large for one message), put back in place. */
  private async withReturn(data: JobReturnedData): Promise<JobReturnedData> {
    if (data.return_object === undefined) return data;
    // Loaded only for a large return: the CLI starts without the object store client.
    const { resolveReturn } = await import('./large-returns.js');
    // An object gone or altered: the return as the stream has it (null, and its reference).
    return resolveReturn(this, data).catch(() => data);
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}
