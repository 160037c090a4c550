import { z } from 'zod';
import { ErrorCodes } from '../errors.js';
import { jid } from '../events/common.js';

/**
 * The dispatcher's runner API on `jobledger.api.runner` (Salt's `salt-run`): request/reply,
 * JSON bodies. The reply may be larger than one NATS message, so it travels in chunks: every
 * message of a reply carries the `Jobledger-Chunks` header (the number of chunks), the chunks
 * are the reply's UTF-8 bytes in order, and an empty message without the header ends it
 * (the sentinel of a `requestMany`).
 */

const jsonObject = z.record(z.string(), z.unknown());

/**
 * Longest runner function name: `runner.<fun>` goes into `salt_returns.fun`, a varchar(50)
 * in Salt's schema.
 */
export const MAX_RUNNER_FUN = 50 - 'runner.'.length;

export const runnerRequest = z.strictObject({
  /** `<module>.<function>`, e.g. `jobs.list_jobs`. */
  fun: z
    .string()
    .min(1, 'Must specify a function to run!\nex: manage.up')
    .max(MAX_RUNNER_FUN, `a runner function name has at most ${MAX_RUNNER_FUN} characters`),
  /** Positional arguments. */
  arg: z.array(z.unknown()).default([]),
  /** Keyword arguments. */
  kwarg: jsonObject.default({}),
  /** The caller; Salt's default when a client passes none. */
  user: z.string().min(1).default('UNKNOWN'),
  /**
   * salt-api's `runner_async`: the reply comes as soon as the call is recorded (its `return` is
   * `{tag, jid}`), and the runner's return is only in the ledger (`salt/run/<jid>/ret`).
   */
  async: z.boolean().optional(),
});
export type RunnerRequestInput = z.input<typeof runnerRequest>;
export type RunnerRequest = z.output<typeof runnerRequest>;

export const runnerSuccess = z.strictObject({
  /** The runner job's own jid (recorded under `salt/run/<jid>/…`). */
  jid,
  /** The runner's return, as salt-run prints it. */
  return: z.unknown(),
  /** False when the runner raised or refused the call. */
  success: z.boolean(),
  /** 0 on success; 1 for an exception, 254 when the call is refused. */
  retcode: z.number().int(),
});
export type RunnerSuccess = z.infer<typeof runnerSuccess>;

export const runnerFailure = z.strictObject({
  error: z.strictObject({
    code: z.enum([ErrorCodes.Validation, ErrorCodes.Unavailable, ErrorCodes.Config, ErrorCodes.Authentication]),
    message: z.string(),
  }),
});
export type RunnerFailure = z.infer<typeof runnerFailure>;

export const runnerReply = z.union([runnerSuccess, runnerFailure]);
export type RunnerReply = z.infer<typeof runnerReply>;

/** Header on every chunk of a chunked reply: how many chunks the reply has. */
export const CHUNKS_HEADER = 'Jobledger-Chunks';

/** Cuts a reply body into chunks of at most `size` bytes (at least one chunk, possibly empty). */
export function chunkBody(body: Uint8Array, size: number): Uint8Array[] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size must be a positive integer, got ${size}`);
  if (body.length <= size) return [body];
  const out: Uint8Array[] = [];
  for (let i = 0; i < body.length; i += size) out.push(body.subarray(i, Math.min(body.length, i + size)));
  return out;
}

/** Joins the chunks of a reply back into its body. */
export function joinChunks(chunks: readonly Uint8Array[]): Uint8Array {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
