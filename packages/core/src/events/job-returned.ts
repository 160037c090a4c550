import { z } from 'zod';
import { agentId, jid, stamp } from './common.js';

/** `salt/job/<jid>/ret/<id>`: Salt's minion return load. Written by the agent. */
export const jobReturnedData = z.looseObject({
  cmd: z.literal('_return'),
  id: agentId,
  jid,
  fun: z.string(),
  fun_args: z.array(z.unknown()),
  return: z.unknown(),
  retcode: z.number().int(),
  success: z.boolean(),
  user: z.string(),
  out: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  master_id: z.string().optional(),
  _stamp: stamp,
});
export type JobReturnedData = z.infer<typeof jobReturnedData>;

export const jobReturned = z.object({
  type: z.literal('job.returned'),
  tag: z.string(),
  data: jobReturnedData,
});
export type JobReturned = z.infer<typeof jobReturned>;

export const jobReturnedTag = (j: string, id: string) => `salt/job/${j}/ret/${id}`;
