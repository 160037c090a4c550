import { SaltTexts } from '@jobledger/core';
import {
  bindArgs,
  CommandExecutionError,
  InvalidArgumentsError,
  lookupFunction,
  ProcessSignalledError,
  splitArg,
  type ExecContext,
} from './modules/index.js';

/** How a job ended on the agent: a return to send, or killed by a signal (no return). */
export type Outcome = { kind: 'returned'; return: unknown; retcode: number; out?: string } | { kind: 'signalled'; signal: number };

const SIGTERM = 15;

function failed(text: string): Outcome {
  return { kind: 'returned', return: text, retcode: 1, out: 'nested' };
}

/** Salt: a zero retcode becomes 1 when the return is a mapping whose `result` or `success` is falsy. */
function effectiveRetcode(ret: unknown, retcode: number): number {
  if (retcode !== 0 || typeof ret !== 'object' || ret === null || Array.isArray(ret)) return retcode;
  const r = ret as Record<string, unknown>;
  return ('result' in r && !r.result) || ('success' in r && !r.success) ? 1 : 0;
}

/** The signal a job was cancelled or killed with: the abort reason's, else SIGTERM (a cancel). */
function abortSignal(signal: AbortSignal): number {
  const reason: unknown = signal.reason;
  return reason instanceof ProcessSignalledError ? reason.signal : SIGTERM;
}

/** `work`, or a ProcessSignalledError as soon as `signal` aborts (what `work` does later is dropped). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => undefined);
  if (signal.aborted) return Promise.reject(new ProcessSignalledError(abortSignal(signal)));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new ProcessSignalledError(abortSignal(signal)));
    signal.addEventListener('abort', onAbort, { once: true });
    void work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Runs `fun` with Salt's `arg` the way a minion's `_thread_return` does, turning every failure
 * into Salt's error return (retcode 1, `out: nested`). Never throws.
 */
export async function execute(fun: string, arg: readonly unknown[], ctx: ExecContext): Promise<Outcome> {
  const lookup = ctx.lookupFunction ?? lookupFunction;
  const fn = lookup(fun);
  if (fn === undefined) return failed(SaltTexts.notAvailable(fun));
  if (ctx.lookupFunction === undefined) ctx = { ...ctx, lookupFunction: lookup };
  try {
    const { args, kwargs } = splitArg(arg);
    const bound = bindArgs(fn.signature, args, kwargs);
    const running = fn.run(bound, ctx);
    // A job inside the agent ends when it is killed, whether or not the function heeds its signal.
    const res = fn.kind === 'inproc' ? await untilAborted(running, ctx.signal) : await running;
    const retcode = effectiveRetcode(res.return, res.retcode ?? 0);
    return { kind: 'returned', return: res.return, retcode };
  } catch (err) {
    if (err instanceof ProcessSignalledError) return { kind: 'signalled', signal: err.signal };
    if (ctx.signal.aborted) return { kind: 'signalled', signal: abortSignal(ctx.signal) };
    if (err instanceof InvalidArgumentsError) return failed(`Passed invalid arguments to ${fun}: ${err.message}`);
    if (err instanceof CommandExecutionError) return failed(`ERROR: ${err.message}`);
    const stack = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
    return failed(`The minion function caused an exception: ${stack}`);
  }
}
