import { fnmatchToRegExp } from '../fnmatch.js';

/**
 * Salt's `publisher_acl` and `publisher_acl_blacklist` (salt/acl, salt/auth `check_authentication`,
 * salt/utils/minions `auth_check`), as the master applies them to a publish from the `salt` CLI.
 *
 *     publisher_acl:
 *       fred:                       # user: exact, glob or regex (Salt's expr_match)
 *         - test.*                  # regex on the function, any target (re.match: start-anchored)
 *         - 'web*':                 # compound target → function rules
 *           - pkg.*
 *           - pkg.install: {args: [vim, null], kwargs: {refresh: 'True'}}
 *     publisher_acl_blacklist:
 *       users: [bob, '^(?!sudo_).*$']
 *       modules: [cmd.*]
 *     sudo_acl: True                # apply publisher_acl to `sudo_<name>` users too
 */
export type FunctionRule = string | Record<string, ArgumentRule>;
export interface ArgumentRule {
  args?: (string | null)[];
  kwargs?: Record<string, string | null>;
}
export type AclRule = string | Record<string, FunctionRule[] | FunctionRule>;

export interface PublisherAcl {
  /** user expression → rules. */
  publisher_acl: Record<string, AclRule[]>;
  publisher_acl_blacklist: { users: string[]; modules: string[] };
  /** Salt's `sudo_acl` (default False): when off, `sudo_<name>` publishes are not restricted. */
  sudo_acl: boolean;
}

export const EMPTY_PUBLISHER_ACL: PublisherAcl = Object.freeze({
  publisher_acl: {},
  publisher_acl_blacklist: { users: [], modules: [] },
  sudo_acl: false,
});

/** Salt's texts: what the CLI prints (and exits 1), and what the master logs. */
export const AclTexts = {
  authorization: 'Authorization error occurred.',
  authentication: 'Authentication error occurred.',
  blacklisted: (user: string, fun: string) =>
    `${user} does not have permissions to run ${fun}. Please contact your local administrator if you believe this is in error.`,
  userAuthFailure: 'Authentication failure of type "user" occurred.',
} as const;

export class AclConfigError extends Error {
  override readonly name = 'AclConfigError';
  readonly retryable = false;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A regex from the configuration, or undefined when it does not compile (Salt logs and skips it). */
function compile(source: string, anchored: 'start' | 'both'): RegExp | undefined {
  try {
    return new RegExp(anchored === 'start' ? `^(?:${source})` : `^(?:${source})$`, 's');
  } catch {
    return undefined;
  }
}

/** Python's `re.match(regex, s)`: anchored at the start only (so `test.ping` matches `test.pingx`). */
export function reMatch(regex: string, s: string): boolean {
  return compile(regex, 'start')?.test(s) ?? false;
}

/** Salt's `expr_match`: equal, or an fnmatch glob, or a regex matching the whole line. */
export function exprMatch(line: string, expr: string): boolean {
  if (line === expr) return true;
  if (fnmatchToRegExp(expr).test(line)) return true;
  return compile(expr, 'both')?.test(line) ?? false;
}

/** Salt's `check_whitelist_blacklist` for one blacklist: false when the value is listed. */
function blacklisted(value: string, list: readonly string[]): boolean {
  return list.some((expr) => exprMatch(value, expr));
}

/** Python's `str()` of a JSON value, as Salt's argument rules see it. */
function pythonStr(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return String(v);
  return JSON.stringify(v);
}

function argsCheck(rule: unknown, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>> | undefined): boolean {
  if (!isRecord(rule)) return false;
  const condArgs = Array.isArray(rule.args) ? rule.args : [];
  for (let i = 0; i < condArgs.length; i++) {
    if (args.length <= i) return false;
    const cond: unknown = condArgs[i];
    if (cond === null || cond === undefined) continue;
    if (!reMatch(pythonStr(cond), pythonStr(args[i]))) return false;
  }
  const condKwargs = isRecord(rule.kwargs) ? rule.kwargs : {};
  for (const [k, cond] of Object.entries(condKwargs)) {
    if (kwargs === undefined || !Object.hasOwn(kwargs, k)) return false;
    if (cond === null || cond === undefined) continue;
    if (!reMatch(pythonStr(cond), pythonStr(kwargs[k]))) return false;
  }
  return true;
}

/** Salt's `__fun_check`: does one of the rules allow `fun` (with these arguments)? */
export function funCheck(
  rules: unknown,
  fun: string,
  args: readonly unknown[],
  kwargs: Readonly<Record<string, unknown>> | undefined,
): boolean {
  for (const cond of Array.isArray(rules) ? rules : [rules]) {
    if (typeof cond === 'string') {
      if (reMatch(cond, fun)) return true;
    } else if (isRecord(cond)) {
      const keys = Object.keys(cond);
      if (keys.length !== 1) continue;
      if (reMatch(keys[0]!, fun) && argsCheck(cond[keys[0]!], args, kwargs)) return true;
    }
  }
  return false;
}

/** The publish as the ACL sees it. */
export interface AclRequest {
  user: string;
  fun: string;
  /** Salt's publish `arg`: positional args, then the `__kwarg__` mapping if any. */
  arg: readonly unknown[];
  /** The ids the target resolved to. */
  minions: readonly string[];
}

export type AclDecision =
  | { allowed: true }
  | {
      allowed: false;
      /** Salt's exception name, as in its publish reply. */
      error: 'AuthorizationError' | 'AuthenticationError';
      /** What the master logs. */
      reason: string;
    };

/** Functions every publish may run (the CLI's own `saltutil.find_job`), as Salt's whitelist. */
const ALWAYS_ALLOWED = new Set(['saltutil.find_job']);

/**
 * Step 1 of Salt's publish: the blacklist, before the target is even resolved.
 */
export function checkBlacklist(acl: PublisherAcl, user: string, fun: string): AclDecision {
  const bl = acl.publisher_acl_blacklist;
  if (blacklisted(user, bl.users) || blacklisted(fun, bl.modules)) {
    return { allowed: false, error: 'AuthorizationError', reason: AclTexts.blacklisted(user, fun) };
  }
  return { allowed: true };
}

export interface AclContext {
  /** Users with root on the master (the dispatcher's own user and `root`): not restricted. */
  privilegedUsers: ReadonlySet<string>;
  /** Ids matching a compound expression among the accepted agents (Salt's `check_minions(valid, 'compound')`). */
  compoundMinions: (expr: string) => readonly string[];
}

/**
 * Steps 2 and 3 of Salt's publish for a `user` auth: which rules apply to the user
 * (`get_values_of_matching_keys(publisher_acl, user)`), then `auth_check` on the function,
 * its arguments and the resolved minions.
 */
export function authorizePublish(acl: PublisherAcl, req: AclRequest, ctx: AclContext): AclDecision {
  const black = checkBlacklist(acl, req.user, req.fun);
  if (!black.allowed) return black;
  let name = req.user;
  if (ctx.privilegedUsers.has(req.user)) return { allowed: true };
  if (req.user.startsWith('sudo_')) {
    // root through sudo: restricted only when sudo_acl is on and there is an ACL at all
    if (!acl.sudo_acl || Object.keys(acl.publisher_acl).length === 0) return { allowed: true };
    name = req.user.slice('sudo_'.length);
  }
  const rules: AclRule[] = [];
  for (const [expr, list] of Object.entries(acl.publisher_acl)) if (exprMatch(name, expr)) rules.push(...list);
  if (rules.length === 0) return { allowed: false, error: 'AuthenticationError', reason: AclTexts.userAuthFailure };
  return authCheck(rules, req, ctx);
}

/**
 * Salt's `auth_check`: does one of the rules allow the function, with these arguments, on every
 * targeted minion? `saltutil.find_job` is always allowed.
 */
export function authCheck(rules: readonly AclRule[], req: AclRequest, ctx: Pick<AclContext, 'compoundMinions'>): AclDecision {
  if (ALWAYS_ALLOWED.has(req.fun)) return { allowed: true };

  const last = req.arg.at(-1);
  const hasKwargs = isRecord(last) && '__kwarg__' in last;
  const args = hasKwargs ? req.arg.slice(0, -1) : req.arg;
  const kwargs = hasKwargs ? last : undefined;
  const targeted = new Set(req.minions);
  for (const rule of rules) {
    if (typeof rule === 'string') {
      if (reMatch(rule, req.fun)) return { allowed: true };
    } else if (isRecord(rule)) {
      const keys = Object.keys(rule);
      if (keys.length !== 1) continue;
      // Salt's validate_tgt: every targeted id must be one the rule's target matches.
      const allowedIds = new Set(ctx.compoundMinions(keys[0]!));
      if ([...targeted].every((id) => allowedIds.has(id)) && funCheck(rule[keys[0]!], req.fun, args, kwargs)) {
        return { allowed: true };
      }
    }
  }
  return { allowed: false, error: 'AuthorizationError', reason: AclTexts.userAuthFailure };
}

const stringList = (v: unknown, what: string): string[] => {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new AclConfigError(`${what} must be a list of strings`);
  return v;
};

/** Reads Salt's keys from a parsed `master.yaml`; throws AclConfigError naming a malformed one. */
export function parsePublisherAcl(doc: Readonly<Record<string, unknown>>): PublisherAcl {
  const raw = doc.publisher_acl;
  const acl: Record<string, AclRule[]> = {};
  if (raw !== undefined && raw !== null) {
    if (!isRecord(raw)) throw new AclConfigError('publisher_acl must be a mapping of users to lists of rules');
    for (const [user, rules] of Object.entries(raw)) {
      if (!Array.isArray(rules)) throw new AclConfigError(`publisher_acl: the rules of ${JSON.stringify(user)} must be a list`);
      for (const r of rules) {
        if (typeof r !== 'string' && !isRecord(r)) {
          throw new AclConfigError(
            `publisher_acl: a rule of ${JSON.stringify(user)} must be a function regex or a {target: [rules]} mapping`,
          );
        }
      }
      acl[user] = rules as AclRule[];
    }
  }
  const bl = doc.publisher_acl_blacklist;
  if (bl !== undefined && bl !== null && !isRecord(bl))
    throw new AclConfigError('publisher_acl_blacklist must be a mapping with users and modules');
  const blm = isRecord(bl) ? bl : {};
  const sudo = doc.sudo_acl;
  if (sudo !== undefined && sudo !== null && typeof sudo !== 'boolean') throw new AclConfigError('sudo_acl must be True or False');
  return {
    publisher_acl: acl,
    publisher_acl_blacklist: {
      users: stringList(blm.users, 'publisher_acl_blacklist.users'),
      modules: stringList(blm.modules, 'publisher_acl_blacklist.modules'),
    },
    sudo_acl: sudo === true,
  };
}
