import { z } from 'zod';
import { ErrorCodes } from '../errors.js';
import { jid, tgtType } from '../events/common.js';
import { Limits, nestsDeeperThan } from '../limits.js';

/**
 * The dispatcher's request/reply contract on `jobledger.api.publish` (JSON bodies).
 * The request is what Salt's `LocalClient.pub` sends to the master, minus `key`/`jid`.
 */

const shallow = (v: unknown) => !nestsDeeperThan(v, Limits.depth);
const tooDeep = { message: `nested more than ${Limits.depth} levels deep` };
const jsonObject = z.record(z.string(), z.unknown()).refine(shallow, tooDeep);
const targetLength = (t: string | string[]) => (typeof t === 'string' ? t.length : t.reduce((n, s) => n + s.length + 1, 0));

export const publishRequest = z.strictObject({
  /** A pattern, or for `list` an array of ids or a comma/whitespace separated string. */
  tgt: z
    .union([z.string(), z.array(z.string())])
    .refine((t) => targetLength(t) <= Limits.targetChars, { message: `the target is longer than ${Limits.targetChars} characters` }),
  tgt_type: tgtType.default('glob'),
  fun: z
    .string()
    .min(1, 'no function given (name one, such as test.ping)')
    .max(Limits.funChars, `the function name is longer than ${Limits.funChars} characters`),
  /** Positional arguments. */
  arg: z.array(z.unknown()).refine(shallow, tooDeep).default([]),
  /** Keyword arguments; merged into `arg` as Salt's `{…, __kwarg__: true}` mapping. */
  kwarg: jsonObject.default({}),
  user: z.string().min(1).default('root'),
  /** `--return` returners, comma separated. */
  ret: z.string().default(''),
  /** `--return_config NAME`: the returners read their options under `NAME.` first (Salt's `ret_config`). */
  ret_config: z.string().min(1).optional(),
  /** `--return_kwargs`: returner options that override the configured ones (Salt's `ret_kwargs`). */
  ret_kwargs: jsonObject.optional(),
  /** Seconds the publisher waits before asking who still runs the job. */
  timeout: z.number().positive().finite().optional(),
  metadata: jsonObject.optional(),
  /** Grain path delimiter for `grain`/`grain_pcre` targets (Salt's `--delimiter`); sent only when not `:`. */
  delimiter: z.string().min(1).optional(),
  /**
   * The client's id for this request. A client that got no reply (the dispatcher holding it
   * died) sends it again with the same id; the job is then stored once, and the reply names it.
   */
  request_id: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'request_id must be 1–64 letters, digits, - or _')
    .optional(),
});
/** What a client sends (defaults may be left out). */
export type PublishRequestInput = z.input<typeof publishRequest>;
export type PublishRequest = z.output<typeof publishRequest>;

export const publishSuccess = z.strictObject({
  jid,
  /** Agents expected to answer, sorted. */
  minions: z.array(z.string()),
  /** Names of a list target that no agent has. */
  missing: z.array(z.string()),
  /** Stream sequence of the `job.published` event. */
  seq: z.number().int().positive(),
});
export type PublishSuccess = z.infer<typeof publishSuccess>;

export const publishFailure = z.strictObject({
  error: z.strictObject({
    code: z.enum([
      ErrorCodes.Validation,
      ErrorCodes.NoMinions,
      ErrorCodes.Unavailable,
      ErrorCodes.Config,
      ErrorCodes.Authorization,
      ErrorCodes.Authentication,
    ]),
    message: z.string(),
  }),
});
export type PublishFailure = z.infer<typeof publishFailure>;

export const publishReply = z.union([publishSuccess, publishFailure]);
export type PublishReply = z.infer<typeof publishReply>;

/**
 * A request of the HTTP API on `jobledger.netapi.*`: the CLI's request plus `eauth`, the backend
 * the API authenticated its user with. Splits the two; undefined `eauth` when it is not named.
 */
export function splitNetapiRequest(json: unknown): { eauth: string | undefined; request: Record<string, unknown> } {
  const body = typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : {};
  const { eauth, ...request } = body;
  return { eauth: typeof eauth === 'string' && eauth !== '' ? eauth : undefined, request };
}
