import {
  assertTargetSupported,
  DEFAULT_TARGET_DELIM,
  expandCompoundNodegroups,
  matchTarget,
  nodegroupComp,
  publishRequest,
  splitNetapiRequest,
  splitListTarget,
  UnsupportedTargetError,
  excerpt,
  zodIssuesText,
  type Nodegroups,
  type TgtType,
} from '@jobledger/core';

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
  /** `--return_config` (Salt's `ret_config`). */
  ret_config?: string;
  /** `--return_kwargs` (Salt's `ret_kwargs`). */
  ret_kwargs?: Record<string, unknown>;
  timeout?: number;
  metadata?: Record<string, unknown>;
  /** Grain path delimiter, only when not `:` (Salt publishes it only then). */
  delimiter?: string;
  /** The client's request id (not part of the event): a request sent again stores its job once. */
  request_id?: string;
}

/** What target resolution needs from the master configuration. */
export interface TargetContext {
  /** The master's `nodegroups:`. */
  nodegroups?: Nodegroups;
  /** The file they come from, named in Salt's "Node group <name> unavailable in <file>". */
  masterConfigFile?: string;
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

/** Runs `check`, turning core's UnsupportedTargetError into a PublishValidationError. */
function supported(check: () => unknown): void {
  try {
    check();
  } catch (err) {
    if (err instanceof UnsupportedTargetError) throw new PublishValidationError(err.message, { cause: err });
    // A pattern that does not compile (or is too large for the regex engine): its text without the pattern.
    if (err instanceof SyntaxError) {
      const why = /: ([^:]+)$/.exec(err.message)?.[1] ?? 'not a valid expression';
      throw new PublishValidationError(`invalid target: ${why}`, { cause: err });
    }
    throw err;
  }
}

/** Salt's target normalisation: list targets become an array of names, others stay a string. */
export function normaliseTarget(tgt: string | readonly string[], type: TgtType): string | string[] {
  // core's matcher is the one place that knows which types it supports.
  supported(() => matchTarget('probe', '', type));
  if (type === 'list') {
    const names = splitListTarget(tgt);
    if (names.length === 0) throw new PublishValidationError(MISSING_TARGET);
    return names;
  }
  if (type === 'compound' && Array.isArray(tgt)) {
    // Salt's compound matcher takes a list of words as well.
    if (tgt.every((w: string) => w.trim() === '')) throw new PublishValidationError(MISSING_TARGET);
    return [...(tgt as readonly string[])];
  }
  if (typeof tgt !== 'string') throw new PublishValidationError(`tgt must be a string for tgt_type '${type}'`);
  if (tgt.trim() === '') throw new PublishValidationError(MISSING_TARGET);
  return tgt;
}

/**
 * What Salt's client does with nodegroups before publishing: `-N group` becomes the group's
 * compound words (tgt_type `compound`; an unknown group is an error naming the configuration
 * file), and `N@group` words inside a compound target are expanded in place, so agents never
 * need the master's nodegroups.
 */
export function expandNodegroups(
  tgt: string | string[],
  type: TgtType,
  ctx: TargetContext = {},
): { tgt: string | string[]; tgt_type: TgtType } {
  const groups = ctx.nodegroups ?? {};
  if (type === 'nodegroup') {
    const name = typeof tgt === 'string' ? tgt : tgt.join(' ');
    if (!Object.hasOwn(groups, name)) {
      throw new PublishValidationError(
        `Node group ${excerpt(name, 200)} unavailable in ${ctx.masterConfigFile ?? 'the master config file'}`,
      );
    }
    return { tgt: nodegroupComp(name, groups), tgt_type: 'compound' };
  }
  if (type === 'compound') return { tgt: expandCompoundNodegroups(tgt, groups), tgt_type: type };
  return { tgt, tgt_type: type };
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Parses and validates a request body; throws PublishValidationError with zod's message. */
export function parsePublishRequest(body: Uint8Array | string, ctx: TargetContext = {}): PublishJob {
  return publishJobFrom(requestJson(body), ctx);
}

/** A request body's JSON document. */
export function requestJson(body: Uint8Array | string): unknown {
  try {
    return JSON.parse(typeof body === 'string' ? body : decoder.decode(body));
  } catch (cause) {
    throw new PublishValidationError(`request is not a JSON document: ${excerpt((cause as Error).message, 200)}`, { cause });
  }
}

/**
 * A publish through the HTTP API (`jobledger.netapi.publish`): the request plus the eauth
 * backend the API authenticated its user with. Only the API's credentials may send it.
 */
export function parseNetapiPublishRequest(body: Uint8Array | string, ctx: TargetContext = {}): { job: PublishJob; eauth: string } {
  const { eauth, request } = splitNetapiRequest(requestJson(body));
  if (eauth === undefined) throw new PublishValidationError('eauth: an API publish names the eauth backend of its user');
  return { job: publishJobFrom(request, ctx), eauth };
}

/** A validated publish request as the dispatcher works with it. */
export function publishJobFrom(json: unknown, ctx: TargetContext = {}): PublishJob {
  const parsed = publishRequest.safeParse(json);
  if (!parsed.success) throw new PublishValidationError(zodIssuesText(parsed.error), { cause: parsed.error });
  const r = parsed.data;
  const target = expandNodegroups(normaliseTarget(r.tgt, r.tgt_type), r.tgt_type, ctx);
  const delimiter = r.delimiter !== undefined && r.delimiter !== DEFAULT_TARGET_DELIM ? r.delimiter : undefined;
  // Every term must be one the agents can evaluate (a compound may hold I@, J@ or R@).
  supported(() => assertTargetSupported(target.tgt, target.tgt_type, { delimiter }));
  const job: PublishJob = {
    tgt: target.tgt,
    tgt_type: target.tgt_type,
    fun: r.fun,
    arg: mergeKwargs(r.arg, r.kwarg),
    user: r.user,
    ret: r.ret,
  };
  if (r.ret_config !== undefined) job.ret_config = r.ret_config;
  if (r.ret_kwargs !== undefined) job.ret_kwargs = r.ret_kwargs;
  if (r.timeout !== undefined) job.timeout = r.timeout;
  if (r.metadata !== undefined) job.metadata = r.metadata;
  if (delimiter !== undefined) job.delimiter = delimiter;
  if (r.request_id !== undefined) job.request_id = r.request_id;
  return job;
}
