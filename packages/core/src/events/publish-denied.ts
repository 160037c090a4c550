import { z } from 'zod';
import { stamp, target, tgtType } from './common.js';

/**
 * `jobledger/publish/denied`: the dispatcher refused a publish by `publisher_acl` or
 * `publisher_acl_blacklist`. Salt only logs this; the ledger keeps every attempt, with who asked
 * for what on which target, so refusals can be audited and counted. No jid was assigned and
 * nothing ran. The arguments are left out on purpose: a refused job's arguments (a password
 * passed to a function the user may not run) have no business in the history.
 */
export const publishDeniedData = z.looseObject({
  user: z.string(),
  fun: z.string(),
  tgt: target,
  tgt_type: tgtType,
  /** Salt's exception name: AuthorizationError (function or target not allowed, or blacklisted) or AuthenticationError (user unknown to the ACL). */
  error: z.enum(['AuthorizationError', 'AuthenticationError']),
  /** What the reply said (Salt's text, as the CLI prints it). */
  message: z.string(),
  /** Why, as the master logs it. */
  reason: z.string(),
  /** The eauth backend of a user of the HTTP API (absent: the CLI's user, by `publisher_acl`). */
  eauth: z.string().optional(),
  _stamp: stamp,
});
export type PublishDeniedData = z.infer<typeof publishDeniedData>;

export const PUBLISH_DENIED_TAG = 'jobledger/publish/denied' as const;

export const publishDenied = z.object({
  type: z.literal('publish.denied'),
  tag: z.literal(PUBLISH_DENIED_TAG),
  data: publishDeniedData,
});
export type PublishDenied = z.infer<typeof publishDenied>;
