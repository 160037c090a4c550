import { z } from 'zod';
import { agentId, jid, stamp } from './common.js';

/**
 * `salt/job/<jid>/returner/<id>`: a returner named in the job's `ret` (`--return`) failed on an
 * agent, or is unknown there. Written by the agent, only after the job's `job.returned`: the
 * return itself is in the ledger either way. Salt only logs this ("The specified '<name>'
 * returner threw a stack trace"); the ledger keeps it so the failure can be seen and counted.
 */
export const returnerFailedData = z.looseObject({
  jid,
  id: agentId,
  /** The returner's name as the job gave it. */
  returner: z.string().min(1),
  /** The error's text (never the return it was given). */
  error: z.string(),
  /** The target may come back (a server down): calling it again could succeed. */
  retryable: z.boolean(),
  _stamp: stamp,
});
export type ReturnerFailedData = z.infer<typeof returnerFailedData>;

export const returnerFailed = z.object({
  type: z.literal('returner.failed'),
  tag: z.string(),
  data: returnerFailedData,
});
export type ReturnerFailed = z.infer<typeof returnerFailed>;

export const returnerFailedTag = (j: string, id: string) => `salt/job/${j}/returner/${id}`;
