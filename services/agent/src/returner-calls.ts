import {
  msgIds,
  returnerFailedTag,
  ReturnerError,
  saltPublishLoad,
  subjects,
  type JobPublishedData,
  type JobReturnedData,
  type LedgerEvent,
  type Returner,
  type ReturnLoad,
} from '@jobledger/core';
import { stampNow, type Logger } from '@jobledger/runtime';
import { Limiter } from './limiter.js';

/**
 * Salt's minion-side `--return`: once an agent has stored a job's return in the ledger, it
 * hands the return to every returner named in the job's `ret`. A returner that fails (or is
 * unknown) is logged and recorded as `returner.failed`; the return itself is already stored.
 */

/** The returners of one agent id (the `@jobledger/returners` registry). */
export interface ReturnerSource {
  /** Every returner name, plugins included, sorted. */
  names(): Promise<string[]>;
  get(name: string, opts: { retConfig?: string; retKwargs?: Record<string, unknown> }): Promise<Returner>;
  closeAll(): Promise<void>;
}

/** The returner names of a job's `ret`: comma-separated, trimmed, empty ones ignored, each once. */
export function returnerNamesOf(ret: string | undefined): string[] {
  if (!ret) return [];
  return [...new Set(ret.split(',').map((s) => s.trim()))].filter((s) => s !== '');
}

/**
 * Salt's minion-side return load, as its returners get it: the stored return without `cmd`,
 * `_stamp`, `user`, `master_id`, plus the job's `ret_config` / `ret_kwargs` when it has them.
 */
export function minionReturnLoad(stored: JobReturnedData, job: JobPublishedData): ReturnLoad {
  const ret: ReturnLoad = {
    id: stored.id,
    jid: stored.jid,
    fun: stored.fun,
    fun_args: stored.fun_args,
    return: stored.return,
    retcode: stored.retcode,
    success: stored.success,
  };
  if (stored.out !== undefined) ret.out = stored.out;
  if (stored.metadata !== undefined) ret.metadata = stored.metadata;
  if (job.ret_config !== undefined) ret.ret_config = job.ret_config;
  if (job.ret_kwargs !== undefined) ret.ret_kwargs = job.ret_kwargs;
  return ret;
}

/** Salt's publish load (what the master's `save_load` stores), from the job's publication. */
export function publishLoadOf(job: JobPublishedData): Record<string, unknown> {
  const load = saltPublishLoad(job);
  if (job.metadata !== undefined) load.metadata = job.metadata;
  if (job.ret_config !== undefined) load.ret_config = job.ret_config;
  if (job.ret_kwargs !== undefined) load.ret_kwargs = job.ret_kwargs;
  return load;
}

/** The error's text and whether calling again could succeed. */
function describe(err: unknown): { text: string; retryable: boolean } {
  const text = err instanceof Error ? err.message : String(err);
  const retryable =
    err instanceof ReturnerError
      ? err.retryable
      : typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === true;
  return { text, retryable };
}

/** A returner call that took longer than it may. */
export class ReturnerTimeoutError extends Error {
  override readonly name = 'ReturnerTimeoutError';
  readonly retryable = true;
}

/** A returner call not made because the agent is stopping. */
export class ReturnerStoppingError extends Error {
  override readonly name = 'ReturnerStoppingError';
  readonly retryable = true;
}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  work.catch(() => undefined); // a late failure of work that lost the race
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ReturnerTimeoutError(`${what} did not finish within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export interface ReturnerCallsOptions {
  /** The returners of an agent id. */
  source(id: string): ReturnerSource;
  /** Appends an event to the ledger. */
  append(subject: string, event: LedgerEvent, msgID: string): Promise<void>;
  log: Logger;
  /** Returner calls in flight at once, over all ids and jobs. */
  concurrency?: number;
  /** How long one call (`saveLoad` or `returner`) may take before it counts as failed. */
  callTimeoutMs?: number;
}

/** Jids whose publish load was handed to `saveLoad` remembered, per returner (oldest forgotten first). */
const SAVED_LOADS_KEPT = 10_000;

/**
 * Runs the `--return` returners of the agent's jobs, off the jobs' path, bounded. Once
 * `close()` has begun no returner is called any more (a closed registry would make its
 * returners again and never close them): a return that comes later is recorded as a retryable
 * `returner.failed` (its append fails quietly, logged, when the connection is already gone).
 */
export class ReturnerCalls {
  private readonly slots: Limiter;
  private readonly pending = new Set<Promise<void>>();
  /** close() has begun: no new call. */
  private closing = false;
  /** close() has returned: calls still waiting for a slot give up. */
  private closed = false;
  /** `<returner>\n<jid>` → the `saveLoad` of that jid by that returner in this process. */
  private readonly savedLoads = new Map<string, Promise<void>>();
  private readonly callTimeoutMs: number;

  constructor(private readonly opts: ReturnerCallsOptions) {
    this.slots = new Limiter(opts.concurrency ?? 16);
    this.callTimeoutMs = opts.callTimeoutMs ?? 60_000;
  }

  /** Calls in flight or waiting. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Hands the stored return `stored` of `job` to the job's returners, in the background. Call
   * it only once the return is appended to the ledger.
   */
  schedule(job: JobPublishedData, stored: JobReturnedData): void {
    const names = returnerNamesOf(job.ret);
    if (names.length === 0) return;
    const ret = minionReturnLoad(stored, job);
    for (const name of names) {
      const p = this.closing ? this.refuse(name, ret, 'scheduled') : this.call(name, job, ret);
      this.pending.add(p);
      void p.finally(() => this.pending.delete(p));
    }
  }

  /**
   * Stops taking calls, waits at most `timeoutMs` for those scheduled before, then lets those
   * still waiting for a slot give up. True when all had finished. Close the returners after it.
   */
  async close(timeoutMs: number): Promise<boolean> {
    this.closing = true;
    const finished = await this.settled(timeoutMs);
    this.closed = true;
    return finished;
  }

  /** A call not made because the agent is stopping: logged and recorded as a retryable failure. */
  private async refuse(name: string, ret: ReturnLoad, when: 'scheduled' | 'queued'): Promise<void> {
    const log = this.opts.log.child({ jid: ret.jid, agent: ret.id, returner: name });
    const err = new ReturnerStoppingError(`'${name}' not called: the agent is stopping (the return is stored in the ledger)`);
    log.warn({ when }, 'returner not called: the agent is stopping');
    await this.recordFailure(name, ret, [err], log);
  }

  /** Waits for every scheduled call, at most `timeoutMs`; true when all have finished. */
  async settled(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.pending.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.pending]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, left);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
    }
    return true;
  }

  private async call(name: string, job: JobPublishedData, ret: ReturnLoad): Promise<void> {
    const log = this.opts.log.child({ jid: ret.jid, agent: ret.id, returner: name });
    const release = await this.slots.acquire();
    if (this.closed) {
      release();
      return this.refuse(name, ret, 'queued');
    }
    const errors: unknown[] = [];
    try {
      // Loading (a plugin's import, a returner's set-up) counts against the same timeout: it holds a slot.
      const returner = await withTimeout(
        this.opts.source(ret.id).get(name, {
          ...(job.ret_config !== undefined ? { retConfig: job.ret_config } : {}),
          ...(job.ret_kwargs !== undefined ? { retKwargs: job.ret_kwargs } : {}),
        }),
        this.callTimeoutMs,
        `loading '${name}'`,
      );
      if (returner.saveLoad) {
        const failed = await this.saveLoadOnce(name, job, returner);
        if (failed !== undefined) errors.push(failed);
      }
      await withTimeout(returner.returner(ret), this.callTimeoutMs, `'${name}.returner'`);
      log.debug('return handed to the returner');
    } catch (err) {
      errors.push(err);
    } finally {
      release();
    }
    if (errors.length > 0) await this.recordFailure(name, ret, errors, log);
  }

  /**
   * `saveLoad(jid, publishLoad, minions)` once per jid and returner in this process: the first
   * id of the jid calls it, the others wait for it. Resolves to the error when this id's own
   * call failed.
   */
  private async saveLoadOnce(name: string, job: JobPublishedData, returner: Returner): Promise<unknown> {
    const key = `${name}\n${job.jid}`;
    const earlier = this.savedLoads.get(key);
    if (earlier !== undefined) {
      await earlier.catch(() => undefined);
      return undefined;
    }
    const saving = withTimeout(returner.saveLoad!(job.jid, publishLoadOf(job), job.minions), this.callTimeoutMs, `'${name}.save_load'`);
    this.savedLoads.set(key, saving);
    if (this.savedLoads.size > SAVED_LOADS_KEPT) this.savedLoads.delete(this.savedLoads.keys().next().value!);
    try {
      await saving;
      return undefined;
    } catch (err) {
      return err;
    }
  }

  private async recordFailure(name: string, ret: ReturnLoad, errors: readonly unknown[], log: Logger): Promise<void> {
    const described = errors.map(describe);
    const error = described.map((d) => d.text).join('; ');
    const retryable = described.some((d) => d.retryable);
    log.error({ error, retryable }, 'returner failed; the return is stored in the ledger');
    try {
      await this.opts.append(
        subjects.jobReturner(ret.jid, ret.id),
        {
          type: 'returner.failed',
          tag: returnerFailedTag(ret.jid, ret.id),
          data: { jid: ret.jid, id: ret.id, returner: name, error, retryable, _stamp: stampNow() },
        },
        msgIds.returnerFailed(ret.jid, ret.id, name),
      );
    } catch (err) {
      log.error({ err }, 'could not append returner.failed');
    }
  }
}
