import { z } from 'zod';
import { matchTarget, publishRequest, splitListTarget, UnsupportedTargetError, type TgtType } from '@jobledger/core';

// The contract lives in core, shared with the CLI.
export {
  publishFailure,
  publishReply,
  publishRequest,
  publishSuccess,
  type PublishFailure,
  type PublishReply,
  type PublishRequest,
  type PublishRequestInput,
  type PublishSuccess,
} from '@jobledger/core';
import { PublishValidationError } from './errors.js';

/** A validated request in the form the `job.published` event carries. */
export interface PublishJob {
  tgt: string | string[];
  tgt_type: TgtType;
  fun: string;
  /** Salt's publish `arg`: positional args, then the kwarg mapping if any. */
  arg: unknown[];
  user: string;
  ret: string;
  timeout?: number;
  metadata?: Record<string, unknown>;
}

/**
 * Salt's publish `arg` (salt/utils/args.py `parse_input` + `LocalClient._prep_pub`): the
 * positional args, then, when there are keyword args, one mapping of them marked `__kwarg__`.
 */
export function mergeKwargs(arg: readonly unknown[], kwarg: Readonly<Record<string, unknown>>): unknown[] {
  if (Object.keys(kwarg).length === 0) return [...arg];
  return [...arg, { ...kwarg, __kwarg__: true }];
}

const MISSING_TARGET = 'Cannot execute command without defining a target.';

/** Throws PublishValidationError when `tgtType` is valid for Salt but not matched by core yet. */
function assertSupported(type: TgtType): void {
  try {
    // core's matcher is the one place that knows which types it supports.
    matchTarget('probe', '', type);
  } catch (err) {
    if (err instanceof UnsupportedTargetError) throw new PublishValidationError(err.message, { cause: err });
    throw err;
  }
}

/** Salt's target normalisation: list targets become an array of names, others stay a string. */
export function normaliseTarget(tgt: string | readonly string[], type: TgtType): string | string[] {
  assertSupported(type);
  if (type === 'list') {
    const names = splitListTarget(tgt);
    if (names.length === 0) throw new PublishValidationError(MISSING_TARGET);
    return names;
  }
  if (typeof tgt !== 'string') throw new PublishValidationError(`tgt must be a string for tgt_type '${type}'`);
  if (tgt.trim() === '') throw new PublishValidationError(MISSING_TARGET);
  return tgt;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Parses and validates a request body; throws PublishValidationError with zod's message. */
export function parsePublishRequest(body: Uint8Array | string): PublishJob {
  let json: unknown;
  try {
    json = JSON.parse(typeof body === 'string' ? body : decoder.decode(body));
  } catch (cause) {
    throw new PublishValidationError(`request is not a JSON document: ${(cause as Error).message}`, { cause });
  }
  const parsed = publishRequest.safeParse(json);
  if (!parsed.success) throw new PublishValidationError(z.prettifyError(parsed.error), { cause: parsed.error });
  const r = parsed.data;
  const job: PublishJob = {
    tgt: normaliseTarget(r.tgt, r.tgt_type),
    tgt_type: r.tgt_type,
    fun: r.fun,
    arg: mergeKwargs(r.arg, r.kwarg),
    user: r.user,
    ret: r.ret,
  };
  if (r.timeout !== undefined) job.timeout = r.timeout;
  if (r.metadata !== undefined) job.metadata = r.metadata;
  return job;
}
