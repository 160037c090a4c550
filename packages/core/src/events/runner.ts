import { z } from 'zod';
import { jid, stamp } from './common.js';

/**
 * `salt/run/<jid>/new` and `salt/run/<jid>/ret`: a runner function (`jobs.list_jobs`, …) ran
 * on the master. Written by the dispatcher, which serves runner calls. `data` is Salt's
 * runner dict (salt/client/mixins.py `low`): created once, `_stamp` set when `new` fires,
 * then `return`, `success` (and `retcode: 1` on an exception) added for `ret`.
 */
const runnerBase = {
  /** `runner.<module>.<function>`, e.g. `runner.jobs.list_jobs`. */
  fun: z.string().startsWith('runner.'),
  jid,
  /** The caller; Salt's default is `UNKNOWN`. */
  user: z.string(),
  /** Positional args, then one mapping of the keyword args when there are any (no `__kwarg__`). */
  fun_args: z.array(z.unknown()),
  _stamp: stamp,
};

export const runnerPublishedData = z.looseObject({ ...runnerBase });
export type RunnerPublishedData = z.infer<typeof runnerPublishedData>;

export const runnerReturnedData = z.looseObject({
  ...runnerBase,
  return: z.unknown(),
  /** True unless the runner raised or refused the call (Salt's job cache stores `'false'` for every runner). */
  success: z.boolean(),
  /** 1 when the runner raised, 254 when Salt refuses the call (unknown function, bad arguments). */
  retcode: z.number().int().optional(),
});
export type RunnerReturnedData = z.infer<typeof runnerReturnedData>;

export const runnerPublished = z.object({ type: z.literal('runner.published'), tag: z.string(), data: runnerPublishedData });
export const runnerReturned = z.object({ type: z.literal('runner.returned'), tag: z.string(), data: runnerReturnedData });
export type RunnerPublished = z.infer<typeof runnerPublished>;
export type RunnerReturned = z.infer<typeof runnerReturned>;

export const runnerPublishedTag = (j: string) => `salt/run/${j}/new`;
export const runnerReturnedTag = (j: string) => `salt/run/${j}/ret`;

/**
 * Salt's runner `fun_args`: `list(args) + ([kwargs] if kwargs else [])`.
 */
export function runnerFunArgs(arg: readonly unknown[], kwarg: Readonly<Record<string, unknown>>): unknown[] {
  return Object.keys(kwarg).length === 0 ? [...arg] : [...arg, { ...kwarg }];
}

/**
 * What the master job cache stores for a runner job (`store_job` with
 * `{id, tgt, jid, return: <runner dict>}`, `fun` and `user` lifted from the dict): the load of
 * the `jids` row and the `full_ret` of the `salt_returns` row. jobledger adds `success` —
 * the truth — where Salt has none (and so stores `'false'` for every runner).
 */
export function runnerJobLoad(masterId: string, data: RunnerReturnedData): Record<string, unknown> {
  return { id: masterId, tgt: masterId, jid: data.jid, return: data, fun: data.fun, user: data.user, success: data.success };
}
