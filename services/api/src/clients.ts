import {
  apiSubjects,
  EauthTexts,
  ErrorCodes,
  type PublishReply,
  type PublishRequestInput,
  type PublishSuccess,
  type RunnerSuccess,
} from '@jobledger/core';
import { MasterUnreachableError, RunnerTimeoutError, type LedgerClient } from '@jobledger/runtime/ledger-client';
import { waitForReturns, type WaitSource } from '@jobledger/runtime/job-wait';
import { ApiTexts, HttpError } from './http-errors.js';
import type { Chunk } from './lowstate.js';
import type { Session } from './sessions.js';

/**
 * salt-api's lowstate clients (salt/netapi `NetapiClient`) over the ledger. Every call goes to
 * the dispatcher on `jobledger.netapi.*` as the session's user and eauth backend; the
 * dispatcher applies that user's `external_auth` rules and records a refusal in the ledger.
 */
export const CLIENTS = ['local', 'local_async', 'runner', 'runner_async', 'wheel'] as const;
export type ClientName = (typeof CLIENTS)[number];

/** Keys of a chunk that are not the runner's keyword arguments. */
const RESERVED = new Set([
  'client',
  'fun',
  'arg',
  'kwarg',
  'token',
  'username',
  'password',
  'eauth',
  'timeout',
  'full_return',
  'tgt',
  'tgt_type',
]);

export interface ClientOptions {
  ledger: LedgerClient;
  /** Seconds a `local` call waits before asking busy agents (Salt's `timeout`, 5). */
  timeout: number;
  /** Seconds `saltutil.find_job` answers are waited for (Salt's `gather_job_timeout`, 10). */
  gatherJobTimeout: number;
  /** Salt's `netapi_enable_clients`; undefined: every client jobledger has. */
  enabledClients?: readonly string[];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function seconds(v: unknown, fallback: number): number {
  const n = v === undefined || v === null || v === '' ? fallback : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new HttpError(400, 'timeout must be a positive number of seconds');
  return n;
}

function refused(reply: Exclude<PublishReply, PublishSuccess>): never {
  const { code, message } = reply.error;
  if (code === ErrorCodes.Authorization) throw new HttpError(401, EauthTexts.authorization);
  if (code === ErrorCodes.Authentication) throw new HttpError(401, EauthTexts.authentication);
  if (code === ErrorCodes.Validation || code === ErrorCodes.Config) throw new HttpError(400, message);
  throw new HttpError(503, message);
}

export class Clients {
  constructor(private readonly opts: ClientOptions) {}

  /** Runs one chunk; what goes into the reply's `return` list. */
  async run(chunk: Chunk, session: Session): Promise<unknown> {
    const client = chunk.client;
    if (typeof client !== 'string' || !(CLIENTS as readonly string[]).includes(client))
      throw new HttpError(400, ApiTexts.invalidClient(client));
    if (this.opts.enabledClients !== undefined && !this.opts.enabledClients.includes(client)) {
      throw new HttpError(400, `Client disabled: '${client}'. Add to 'netapi_enable_clients' master config option to enable.`);
    }
    try {
      switch (client as ClientName) {
        case 'local':
          return await this.local(chunk, session, false);
        case 'local_async':
          return await this.local(chunk, session, true);
        case 'runner':
          return await this.runner(chunk, session);
        case 'runner_async':
          return await this.runner(chunk, session, true);
        case 'wheel':
          return await this.wheel(chunk, session);
      }
    } catch (err) {
      if (err instanceof MasterUnreachableError) throw new HttpError(503, ApiTexts.masterDown, { cause: err });
      if (err instanceof RunnerTimeoutError) throw new HttpError(504, err.message, { cause: err });
      throw err;
    }
  }

  /** A publish as the session's user, for the dispatcher to check against its eauth rules. */
  private netapiPublish(req: Omit<PublishRequestInput, 'user'>, session: Session): Promise<PublishReply> {
    return this.opts.ledger.publish({ ...req, user: session.user, eauth: session.eauth }, 20_000, apiSubjects.netapiPublish);
  }

  private async publish(chunk: Chunk, session: Session, timeout: number): Promise<PublishSuccess | undefined> {
    if (typeof chunk.fun !== 'string') throw new HttpError(400, 'fun: name one function, such as test.ping');
    if (typeof chunk.tgt !== 'string' && !Array.isArray(chunk.tgt)) throw new HttpError(400, 'tgt: name a target, such as *');
    const reply = await this.netapiPublish(
      {
        tgt: chunk.tgt as string | string[],
        tgt_type: (chunk.tgt_type ?? 'glob') as 'glob',
        fun: chunk.fun,
        arg: Array.isArray(chunk.arg) ? chunk.arg : [],
        kwarg: isRecord(chunk.kwarg) ? chunk.kwarg : {},
        ret: typeof chunk.ret === 'string' ? chunk.ret : '',
        timeout,
      },
      session,
    );
    if ('error' in reply) {
      if (reply.error.code === ErrorCodes.NoMinions) return undefined;
      refused(reply);
    }
    return reply;
  }

  /** `local`: `{id: return}`, false for an agent that did not return; `local_async`: `{jid, minions}`. */
  private async local(chunk: Chunk, session: Session, async: boolean): Promise<unknown> {
    const timeout = seconds(chunk.timeout, this.opts.timeout);
    const job = await this.publish(chunk, session, timeout);
    if (job === undefined) return {};
    if (async) return { jid: job.jid, minions: job.minions };
    const fullReturn = chunk.full_return === true || chunk.full_return === 'true' || chunk.full_return === 'True';
    const { ledger } = this.opts;
    const source: WaitSource = {
      watch: (jid, fromSeq, onReturn) => ledger.watchReturns(jid, fromSeq, onReturn),
      findJob: async (jid, ids) => {
        try {
          const r = await this.netapiPublish(
            { tgt: ids, tgt_type: 'list', fun: 'saltutil.find_job', arg: [jid], timeout: this.opts.gatherJobTimeout },
            session,
          );
          return 'error' in r ? undefined : { jid: r.jid, seq: r.seq };
        } catch {
          return undefined;
        }
      },
    };
    const out: Record<string, unknown> = {};
    for await (const event of waitForReturns(source, {
      jid: job.jid,
      seq: job.seq,
      minions: job.minions,
      missing: job.missing,
      timeoutMs: timeout * 1000,
      gatherJobTimeoutMs: this.opts.gatherJobTimeout * 1000,
      expectMinions: true,
    })) {
      if (event.type === 'return') {
        const r = event.ret;
        out[r.id] = fullReturn ? { ret: r.return, retcode: r.retcode ?? 0, jid: job.jid } : r.return;
      } else if (!event.missing) out[event.id] = false;
    }
    return out;
  }

  /**
   * A runner or wheel call at the master, as the session's user: `fun`, `arg`, and keyword
   * arguments in `kwarg` or as top-level keys of the chunk (Salt's `format_call`).
   */
  private async masterCall(chunk: Chunk, session: Session, subject: string, async = false): Promise<RunnerSuccess & { fun: string }> {
    const fun = chunk.fun;
    if (typeof fun !== 'string' || fun.split('.').length !== 2) throw new HttpError(400, ApiTexts.checkSyntax);
    const kwarg: Record<string, unknown> = isRecord(chunk.kwarg) ? { ...chunk.kwarg } : {};
    for (const [k, v] of Object.entries(chunk)) if (!RESERVED.has(k)) kwarg[k] = v;
    const reply = await this.opts.ledger.runner(
      {
        fun,
        arg: Array.isArray(chunk.arg) ? chunk.arg : [],
        kwarg,
        user: session.user,
        eauth: session.eauth,
        ...(async ? { async: true } : {}),
      },
      seconds(chunk.timeout, 300) * 1000,
      subject,
    );
    if ('error' in reply) {
      if (reply.error.code === ErrorCodes.Authentication) throw new HttpError(401, reply.error.message);
      if (reply.error.code === ErrorCodes.Validation) throw new HttpError(400, reply.error.message);
      throw new HttpError(503, reply.error.message);
    }
    return { ...reply, fun };
  }

  /** `runner`: the runner's return, as the master's runner gives it; `runner_async`: `{tag, jid}` at once. */
  async runner(chunk: Chunk, session: Session, async = false): Promise<unknown> {
    const reply = await this.masterCall(chunk, session, apiSubjects.netapiRunner, async);
    if (!async && chunk.full_return === true) {
      const tag = `salt/run/${reply.jid}/ret`;
      return {
        tag,
        data: { fun: `runner.${reply.fun}`, jid: reply.jid, user: session.user, return: reply.return, success: reply.success },
      };
    }
    return reply.return;
  }

  /** `wheel` (the key functions, served by the keyserver): Salt's wheel return event. */
  async wheel(chunk: Chunk, session: Session): Promise<{ tag: string; data: Record<string, unknown> & { return: unknown } }> {
    const reply = await this.masterCall(chunk, session, apiSubjects.netapiWheel);
    const tag = `salt/wheel/${reply.jid}`;
    return {
      tag,
      data: { fun: `wheel.${reply.fun}`, jid: reply.jid, tag, user: session.user, return: reply.return, success: reply.success },
    };
  }
}
