import { z } from 'zod';
import { encodeAgentId } from '../subject-codec.js';
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
  /**
   * A return too large for one stream message is kept in the object store bucket
   * `ledger_returns`: `return` is then null here, and readers put the object's value in its place
   * (`inlineReturn`). `digest` is the object store's `SHA-256=<base64url>` of the JSON bytes.
   */
  return_object: z.object({ bucket: z.string(), name: z.string(), size: z.number().int().nonnegative(), digest: z.string() }).optional(),
  _stamp: stamp,
});
export type ReturnObject = NonNullable<z.infer<typeof jobReturnedData>['return_object']>;
export type JobReturnedData = z.infer<typeof jobReturnedData>;

export const jobReturned = z.object({
  type: z.literal('job.returned'),
  tag: z.string(),
  data: jobReturnedData,
});
export type JobReturned = z.infer<typeof jobReturned>;

export const jobReturnedTag = (j: string, id: string) => `salt/job/${j}/ret/${id}`;

/**
 * The object name of an agent's large return for a job: `<jid>.<encoded agent id>.<nonce>`. The
 * nonce (random, chosen by the agent) keeps the name unguessable to other agents, which may write
 * objects into the bucket but cannot read it or the returns that name the objects.
 */
export function returnObjectName(jid: string, id: string, nonce: string): string {
  return `${jid}.${encodeAgentId(id)}.${nonce}`;
}

/** The return data with the stored return put back in place of its `return_object`. */
export function inlineReturn(data: JobReturnedData, value: unknown): JobReturnedData {
  const { return_object: _ref, ...rest } = data;
  return { ...rest, return: value };
}
