import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { type Msg, type Subscription } from '@nats-io/transport-node';
import { z } from 'zod';
import {
  excerpt,
  zodIssuesText,
  apiSubjects,
  encodeEvent,
  EauthTexts,
  ErrorCodes,
  JidGenerator,
  msgIds,
  runnerFunArgs,
  runnerPublishedTag,
  runnerRequest,
  runnerReturnedTag,
  saltStamp,
  SaltTexts,
  splitNetapiRequest,
  subjects,
  type LedgerEvent,
  type MicrosClock,
  type RunnerFailure,
  type RunnerReply,
  type RunnerRequest,
  type RunnerReturnedData,
} from '@jobledger/core';
import { HEADER_ROOM, openDatabase, respondChunked, type Database, type EventSigner, type Ledger, type Logger } from '@jobledger/runtime';
import { NoMinionsError } from '../errors.js';
import type { PublishJob, PublishSuccess } from '../publish-request.js';
import { collectReturns } from './job-returns.js';
import { JobStore } from './job-store.js';
import { RUNNER_FUNCTIONS, type RunnerContext, type RunningRunner } from './functions.js';
import { bindArgs, InvalidArgumentsError } from './signature.js';

/**
 * Salt's `salt-run` on the master: serves `jobledger.api.runner` (queue group `dispatcher`).
 * Every call is a runner job of its own, recorded like Salt's runner events: `runner.published`
 * is appended before the function runs and `runner.returned` after it (the projector stores it
 * in the job cache under the master id). Functions read the read models once the projector
 * has applied the stream as it was when the call came, so a job the caller just ran is seen.
 */

export interface RunnerServiceOptions {
  ledger: Ledger;
  /** Signs the runner's events with the master's event key. */
  signer?: EventSigner | undefined;
  /** The dispatcher's publish path, for runner functions that run jobs (`jobs.active`). */
  publish(job: PublishJob): Promise<PublishSuccess>;
  clock: MicrosClock;
  /** The dispatcher's one jid source, shared with the publish path. */
  jids?: JidGenerator;
  logger: Logger;
  /** PostgreSQL of the read models; without it functions that read them fail. */
  databaseUrl?: string;
  /** The projector's checkpoint name (its durable consumer). */
  projectorConsumer: string;
  /** Queue group shared with the publish API. */
  queue: string;
  /** Longest wait for the projector to catch up before reading anyway (ms). */
  consistencyWaitMs?: number;
  /** How long `jobs.active` waits for `saltutil.running` returns (Salt's `timeout`, ms). */
  activeTimeoutMs?: number;
  /** Milliseconds to wait for one PubAck. */
  publishTimeoutMs?: number;
  /**
   * A call from the HTTP API (`jobledger.netapi.runner`): may the eauth user run it? The
   * refusal's text when not (recorded by the callee); without it such calls are refused.
   */
  authorizeEauth?: (req: RunnerRequest, eauth: string) => Promise<string | undefined>;
}

export interface RunnerService {
  stop(): Promise<void>;
}

/** Attempts with a fresh jid when the jid's subject is already taken. */
const MAX_JIDS = 3;

/** Salt's exit status of a refused call (`salt/run/<jid>/ret` for a SaltException). */
export const RETCODE_REFUSED = 254;

class RecordError extends Error {
  override readonly name = 'RecordError';
}

function failure(code: RunnerFailure['error']['code'], message: string): RunnerFailure {
  return { error: { code, message } };
}

function respond(msg: Msg, reply: RunnerReply, maxPayload: number): void {
  respondChunked(msg, reply, maxPayload);
}

export async function startRunnerService(opts: RunnerServiceOptions): Promise<RunnerService> {
  const { ledger, logger } = opts;
  const log = logger.child({ component: 'runner' });
  const jids = opts.jids ?? new JidGenerator(opts.clock);
  const publishTimeoutMs = opts.publishTimeoutMs ?? 2_500;
  const consistencyWaitMs = opts.consistencyWaitMs ?? 2_000;
  const activeTimeoutMs = opts.activeTimeoutMs ?? 5_000;
  const database: Database | undefined = opts.databaseUrl ? openDatabase(opts.databaseUrl, { max: 4 }) : undefined;
  const store = database ? new JobStore(database.pool) : undefined;
  const running = new Map<string, RunningRunner>();
  const inFlight = new Set<Promise<void>>();
  const maxPayload = () => ledger.nc.info?.max_payload ?? 1024 * 1024;

  /** Appends an event; `expectNew` makes sure the subject is still empty (one jid, one runner job). */
  const append = async (
    subject: string,
    event: LedgerEvent,
    msgID: string,
    expectNew: boolean,
    body = encodeEvent(event),
  ): Promise<'stored' | 'taken'> => {
    try {
      await ledger.js.publish(subject, body, {
        msgID,
        ...(opts.signer ? { headers: opts.signer.headers(subject, body) } : {}),
        timeout: publishTimeoutMs,
        ...(expectNew ? { expect: { lastSubjectSequence: 0, streamName: ledger.stream } } : {}),
      });
      return 'stored';
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) return 'taken';
      throw new RecordError(`appending ${event.type} to stream ${ledger.stream} failed: ${(err as Error).message}`, { cause: err });
    }
  };

  /** The stream's last sequence: what the read models must hold before a function reads them. */
  const streamHead = async (): Promise<number> => (await ledger.jsm.streams.info(ledger.stream)).state.last_seq;

  const caughtUp = async (target: number): Promise<JobStore> => {
    if (!store) throw new Error('DATABASE_URL is not set: the dispatcher cannot read the job cache');
    const until = Date.now() + consistencyWaitMs;
    for (;;) {
      const applied = await store.appliedSeq(opts.projectorConsumer);
      if (applied >= target) return store;
      if (Date.now() >= until) {
        log.warn({ applied, target }, 'the projector is behind; reading the job cache as it is');
        return store;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const runOnAgents = async (user: string, fun: string, tgt: string): Promise<Record<string, unknown>> => {
    let job: PublishSuccess;
    try {
      job = await opts.publish({ tgt, tgt_type: 'glob', fun, arg: [], user, ret: '', timeout: activeTimeoutMs / 1000 });
    } catch (err) {
      if (err instanceof NoMinionsError) return {};
      throw err;
    }
    return collectReturns(ledger, job, activeTimeoutMs);
  };

  /** Runs the function; Salt's texts for refusals and exceptions. */
  const execute = async (req: RunnerRequest, ctx: RunnerContext): Promise<{ ret: unknown; success: boolean; retcode: number }> => {
    const fn = RUNNER_FUNCTIONS.get(req.fun);
    if (fn === undefined) return { ret: SaltTexts.notAvailable(req.fun), success: false, retcode: RETCODE_REFUSED };
    let args: Record<string, unknown>;
    try {
      args = bindArgs(fn.sig, req.arg, req.kwarg);
    } catch (err) {
      if (!(err instanceof InvalidArgumentsError)) throw err;
      return { ret: `\nPassed invalid arguments: ${err.message}\n\nUsage:\n${fn.doc}`, success: false, retcode: 1 };
    }
    try {
      return { ret: await fn.run(ctx, args), success: true, retcode: 0 };
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      log.info({ err: e, fun: req.fun }, 'runner raised');
      return { ret: `Exception occurred in runner ${req.fun}: ${e.name}: ${e.message}`, success: false, retcode: 1 };
    }
  };

  const handle = async (msg: Msg, netapi: boolean): Promise<void> => {
    const started = process.hrtime.bigint();
    let req: RunnerRequest;
    let eauth: string | undefined;
    try {
      const json = msg.json<unknown>();
      if (netapi) {
        const split = splitNetapiRequest(json);
        if (split.eauth === undefined) throw new Error('eauth: an API runner call names the eauth backend of its user');
        eauth = split.eauth;
        req = runnerRequest.parse(split.request);
      } else req = runnerRequest.parse(json);
    } catch (err) {
      const message =
        err instanceof z.ZodError ? zodIssuesText(err) : `request is not a JSON document: ${excerpt((err as Error).message, 200)}`;
      respond(msg, failure(ErrorCodes.Validation, message), maxPayload());
      return;
    }
    if (eauth !== undefined) {
      const denied = opts.authorizeEauth ? await opts.authorizeEauth(req, eauth) : EauthTexts.specDenied('token', req.user);
      if (denied !== undefined) {
        respond(msg, failure(ErrorCodes.Authentication, denied), maxPayload());
        return;
      }
    }
    const fun = `runner.${req.fun}`;
    const fun_args = runnerFunArgs(req.arg, req.kwarg);
    let head: number;
    let published: { fun: string; jid: string; user: string; fun_args: unknown[]; _stamp: string } | undefined;
    try {
      head = await streamHead();
      for (let attempt = 1; published === undefined; attempt++) {
        const jid = jids.next();
        const data = { fun, jid, user: req.user, fun_args, _stamp: saltStamp(opts.clock()) };
        const event: LedgerEvent = { type: 'runner.published', tag: runnerPublishedTag(jid), data };
        if ((await append(subjects.runNew(jid), event, msgIds.runNew(jid), true)) === 'stored') published = data;
        else if (attempt >= MAX_JIDS) throw new RecordError(`could not assign a unique jid after ${MAX_JIDS} attempts`);
      }
    } catch (err) {
      log.error({ err, fun }, 'runner call not recorded; not run');
      respond(msg, failure(ErrorCodes.Unavailable, `the ledger cannot record the runner call: ${(err as Error).message}`), maxPayload());
      return;
    }

    const { jid } = published;
    if (req.async === true) respond(msg, { jid, return: { tag: `salt/run/${jid}`, jid }, success: true, retcode: 0 }, maxPayload());
    running.set(jid, { ...published, pid: process.pid });
    let outcome: { ret: unknown; success: boolean; retcode: number };
    try {
      let ready: Promise<JobStore> | undefined;
      const ctx: RunnerContext = {
        store: () => (ready ??= caughtUp(head)),
        user: req.user,
        running: () => [...running.values()],
        runOnAgents: (f, tgt) => runOnAgents(req.user, f, tgt),
        now: () => new Date(),
      };
      outcome = await execute(req, ctx);
    } finally {
      running.delete(jid);
    }

    const data: RunnerReturnedData = {
      ...published,
      _stamp: saltStamp(opts.clock()),
      return: outcome.ret,
      success: outcome.success,
      ...(outcome.retcode !== 0 ? { retcode: outcome.retcode } : {}),
    };
    let event: LedgerEvent = { type: 'runner.returned', tag: runnerReturnedTag(jid), data };
    let body = encodeEvent(event);
    if (body.length > maxPayload() - HEADER_ROOM) {
      // The caller still gets the whole return; the ledger records that it was too large.
      const text = `ERROR: the return of ${fun} is ${body.length} bytes; the server accepts at most ${maxPayload()} in one message, so it was not recorded`;
      log.warn({ jid, size: body.length }, 'runner return too large to record');
      event = { ...event, data: { ...data, return: text } };
      body = encodeEvent(event);
    }
    try {
      await append(subjects.runRet(jid), event, msgIds.runRet(jid), false, body);
    } catch (err) {
      log.error({ err, jid, fun }, 'runner return not recorded');
    }
    if (req.async !== true) respond(msg, { jid, return: outcome.ret, success: outcome.success, retcode: outcome.retcode }, maxPayload());
    log.info({ jid, fun, success: outcome.success, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'runner call');
  };

  const serve = (subject: string, netapi: boolean) =>
    ledger.nc.subscribe(subject, {
      queue: opts.queue,
      callback: (err, msg) => {
        if (err) {
          log.error({ err, subject }, 'runner subscription error');
          return;
        }
        const p = handle(msg, netapi)
          .catch((e: unknown) => log.error({ err: e }, 'runner request failed'))
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      },
    });
  const subs: Subscription[] = [];
  try {
    subs.push(serve(apiSubjects.runner, false), serve(apiSubjects.netapiRunner, true));
    await ledger.nc.flush();
  } catch (err) {
    await database?.close().catch(() => undefined);
    throw err;
  }
  log.info({ subject: apiSubjects.runner, queue: opts.queue, database: database !== undefined }, 'runner serving');

  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        for (const sub of subs) if (!sub.isClosed()) await sub.drain().catch(() => undefined);
        await Promise.allSettled(inFlight);
        await database?.close().catch(() => undefined);
      })();
      return stopping;
    },
  };
}
