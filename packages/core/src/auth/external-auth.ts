import { AclConfigError, AclTexts, authCheck, checkBlacklist, exprMatch, funCheck } from './publisher-acl.js';
import type { AclContext, AclDecision, AclRequest, AclRule, PublisherAcl } from './publisher-acl.js';

/**
 * Salt's `external_auth` (salt/auth, salt/utils/minions `fill_auth_list`, `spec_check`): which
 * user of which eauth backend may run what, for calls through the HTTP API.
 *
 *     external_auth:
 *       file:
 *         ^filename: /etc/jobledger/api-users.htpasswd   # backend options start with ^
 *         ^filetype: htpasswd
 *         saltdev:                  # user: exact, glob or regex
 *           - '.*'                  # minion functions, any target
 *           - '@runner'             # every runner
 *           - '@wheel'              # every wheel function
 *           - '@jobs'               # the runner module jobs
 *           - 'web*': ['test.*']    # compound target → function rules
 *         admins%: ['@wheel']       # a group (the backend's groups)
 *         '*': ['test.ping']        # users no other key matched
 */
export interface EauthBackend {
  /** `^name` keys, without the `^`. */
  options: Record<string, unknown>;
  /** user expression (or `group%`) → rules. */
  users: Record<string, AclRule[]>;
}

export type ExternalAuth = Record<string, EauthBackend>;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads `external_auth` from a parsed `master.yaml`; throws AclConfigError naming a malformed entry. */
export function parseExternalAuth(doc: Readonly<Record<string, unknown>>): ExternalAuth {
  const raw = doc.external_auth;
  const out: ExternalAuth = {};
  if (raw === undefined || raw === null) return out;
  if (!isRecord(raw)) throw new AclConfigError('external_auth must be a mapping of eauth backends to users');
  for (const [eauth, block] of Object.entries(raw)) {
    if (!isRecord(block)) throw new AclConfigError(`external_auth: ${JSON.stringify(eauth)} must be a mapping of users to lists of rules`);
    const backend: EauthBackend = { options: {}, users: {} };
    for (const [key, value] of Object.entries(block)) {
      if (key.startsWith('^')) {
        backend.options[key.slice(1)] = value;
        continue;
      }
      if (!Array.isArray(value))
        throw new AclConfigError(`external_auth: the rules of ${JSON.stringify(key)} under ${eauth} must be a list`);
      for (const r of value) {
        if (typeof r !== 'string' && !isRecord(r)) {
          throw new AclConfigError(`external_auth: a rule of ${JSON.stringify(key)} under ${eauth} must be a function regex or a mapping`);
        }
      }
      backend.users[key] = value as AclRule[];
    }
    out[eauth] = backend;
  }
  return out;
}

/**
 * Salt's `fill_auth_list`: the rules of every user key matching the name, of every `group%`
 * the user is in, and those of `'*'` when no user key matched (always, with `permissive_acl`).
 */
export function eauthRules(backend: EauthBackend, user: string, groups: readonly string[] = [], permissive = false): AclRule[] {
  const rules: AclRule[] = [];
  let matched = false;
  for (const [key, list] of Object.entries(backend.users)) {
    if (key === '*' && !permissive) continue;
    if (key.endsWith('%')) {
      if (groups.includes(key.slice(0, -1))) rules.push(...list);
    } else if (exprMatch(user, key)) {
      matched = true;
      rules.push(...list);
    }
  }
  if (!permissive && !matched && backend.users['*']) rules.push(...backend.users['*']);
  return rules;
}

/**
 * A publish by an eauth user: the blacklist first (it applies to every publish), then
 * `auth_check` on the user's eauth rules. No rules at all is an authentication error, as Salt
 * gives a token without an ACL.
 */
export function authorizeEauthPublish(
  blacklist: PublisherAcl,
  rules: readonly AclRule[],
  req: AclRequest,
  ctx: Pick<AclContext, 'compoundMinions'>,
): AclDecision {
  const black = checkBlacklist(blacklist, req.user, req.fun);
  if (!black.allowed) return black;
  if (rules.length === 0) return { allowed: false, error: 'AuthenticationError', reason: AclTexts.userAuthFailure };
  const decision = authCheck(rules, req, ctx);
  return decision.allowed ? decision : { ...decision, reason: `${req.user} may not run ${req.fun} on the targeted minions` };
}

/** The kinds of master-side calls `@…` rules grant. */
export type SpecForm = 'runner' | 'wheel';

/**
 * Salt's `spec_check` for a runner or wheel function (`mod.fun`): `@runner` / `@runners` /
 * `@wheel` / `@wheels`, `@<module>`, or `{'@runner': [regex on mod.fun]}` /
 * `{'@<module>': [regex on fun]}`. Plain strings never grant runner or wheel access.
 */
export function specCheck(
  rules: readonly AclRule[],
  fun: string,
  form: SpecForm,
  args: readonly unknown[] = [],
  kwargs?: Readonly<Record<string, unknown>>,
): boolean {
  const comps = fun.split('.');
  if (comps.length !== 2) return false;
  const [mod, name] = comps as [string, string];
  const isForm = (s: string) => s === `@${form}` || s === `@${form}s`;
  for (const rule of rules) {
    if (typeof rule === 'string') {
      if (rule.startsWith('@') && (rule.slice(1) === mod || isForm(rule))) return true;
    } else if (isRecord(rule)) {
      const keys = Object.keys(rule);
      if (keys.length !== 1) continue;
      const key = keys[0]!;
      if (!key.startsWith('@')) continue;
      if (key.slice(1) === mod && funCheck(rule[key], name, args, kwargs)) return true;
      if (isForm(key) && funCheck(rule[key], fun, args, kwargs)) return true;
    }
  }
  return false;
}

/** Salt's texts for an eauth call refused at the master (what salt-api puts in its 401 page). */
export const EauthTexts = {
  authentication: AclTexts.authentication,
  authorization: AclTexts.authorization,
  /** A runner or wheel call the user's rules do not grant. */
  specDenied: (type: 'token' | 'eauth', user: string) => `Authentication failure of type "${type}" occurred for user ${user}.`,
} as const;
