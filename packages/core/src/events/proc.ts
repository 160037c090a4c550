import { z } from 'zod';
import { agentId, jid, stamp } from './common.js';

/**
 * `salt/job/<jid>/proc/<id>/<what>`: the life of a job's process on one agent.
 * `pid` is the child process for shell functions, the agent's own pid for in-process ones.
 */
const procBase = {
  jid,
  id: agentId,
  fun: z.string(),
  pid: z.number().int(),
  _stamp: stamp,
};

export const procStartedData = z.looseObject({ ...procBase });
export const procSignalledData = z.looseObject({ ...procBase, signal: z.number().int() });
/**
 * How a job's process ended: `returned` (its return is stored), `signalled` (killed by a
 * signal), `lost` (the agent died while it ran; found through its proc file on restart).
 */
export const procOutcome = z.enum(['returned', 'signalled', 'lost']);
export type ProcOutcome = z.infer<typeof procOutcome>;
export const procEndedData = z.looseObject({
  ...procBase,
  outcome: procOutcome,
  retcode: z.number().int().optional(),
  signal: z.number().int().optional(),
});

export const procStarted = z.object({ type: z.literal('proc.started'), tag: z.string(), data: procStartedData });
export const procSignalled = z.object({ type: z.literal('proc.signalled'), tag: z.string(), data: procSignalledData });
export const procEnded = z.object({ type: z.literal('proc.ended'), tag: z.string(), data: procEndedData });
export type ProcStarted = z.infer<typeof procStarted>;
export type ProcSignalled = z.infer<typeof procSignalled>;
export type ProcEnded = z.infer<typeof procEnded>;
export type ProcStartedData = z.infer<typeof procStartedData>;
export type ProcEndedData = z.infer<typeof procEndedData>;

export type ProcWhat = 'started' | 'signalled' | 'ended';
export const procTag = (j: string, id: string, what: ProcWhat) => `salt/job/${j}/proc/${id}/${what}`;
