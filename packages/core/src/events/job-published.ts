import { z } from 'zod';
import { agentId, jid, stamp, target, tgtType } from './common.js';

/** `salt/job/<jid>/new`: a job was published to the agents. Written by the dispatcher. */
export const jobPublishedData = z.looseObject({
  jid,
  tgt: target,
  tgt_type: tgtType,
  user: z.string(),
  fun: z.string().min(1),
  /** Salt's publish `arg`: positional args, then a `{…, __kwarg__: true}` mapping for key=value args. */
  arg: z.array(z.unknown()),
  /** Agents expected to answer. */
  minions: z.array(agentId),
  /** Names in a list target that no agent has. */
  missing: z.array(z.string()),
  /** `--return` returners, comma separated (Salt's `ret`). */
  ret: z.string().default(''),
  /** `--return_config NAME` (Salt's `ret_config`): returner options are looked up under `NAME.` first. */
  ret_config: z.string().optional(),
  /** `--return_kwargs` (Salt's `ret_kwargs`): returner options overriding the configured ones. */
  ret_kwargs: z.record(z.string(), z.unknown()).optional(),
  /** Seconds the publisher waits before asking who still runs the job. */
  timeout: z.number().positive().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  /** Grain path delimiter of a `grain`/`grain_pcre` target, when not `:` (Salt's publish `delimiter`). */
  delimiter: z.string().optional(),
  _stamp: stamp,
});
export type JobPublishedData = z.infer<typeof jobPublishedData>;

export const jobPublished = z.object({
  type: z.literal('job.published'),
  tag: z.string(),
  data: jobPublishedData,
});
export type JobPublished = z.infer<typeof jobPublished>;

export const jobPublishedTag = (j: string) => `salt/job/${j}/new`;

/**
 * The core of Salt's publish load (`cmd: publish`, target, function, args, `ret`, jid, user), in
 * Salt's key order: what `save_load` stores. Callers add what their store keeps besides.
 */
export function saltPublishLoad(data: JobPublishedData): Record<string, unknown> {
  return {
    cmd: 'publish',
    tgt: data.tgt,
    fun: data.fun,
    arg: data.arg,
    tgt_type: data.tgt_type,
    ret: data.ret,
    jid: data.jid,
    user: data.user,
  };
}
