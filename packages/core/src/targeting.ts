import type { TgtType } from './events/common.js';
import { compoundMatch, type TargetWord } from './compound.js';
import { fnmatchToRegExp } from './fnmatch.js';
import { DEFAULT_TARGET_DELIM, grainMatch, grainPcreMatch } from './grain-match.js';
import { ipcidrMatch } from './ipcidr.js';
import { nodegroupComp, type Nodegroups } from './nodegroups.js';

/**
 * Target matching as Salt's minions do it (salt/matchers): each agent id decides for itself
 * whether a job is meant for it, from its id and its grains. `glob`, `pcre`, `list`, `grain`,
 * `grain_pcre`, `ipcidr`, `compound` and `nodegroup` are supported; `pillar`, `pillar_pcre` and
 * `range` are not (agents have no pillar, and there is no range server).
 *
 * The same functions predict the expected agents on the dispatcher (Salt's `CkMinions`): there
 * an agent whose grains are not known matches every grain and address term (Salt's master is
 * greedy), which can only add expected agents, never lose one.
 */

export { fnmatchToRegExp } from './fnmatch.js';

export class UnsupportedTargetError extends Error {
  override readonly name = 'UnsupportedTargetError';
  readonly retryable = false;
}

const regexCache = new Map<string, RegExp>();

function cached(key: string, build: () => RegExp): RegExp {
  let re = regexCache.get(key);
  if (!re) {
    if (regexCache.size > 1000) regexCache.clear();
    re = build();
    regexCache.set(key, re);
  }
  return re;
}

/** fnmatch, case-sensitive (POSIX). */
export function globMatch(id: string, pattern: string): boolean {
  return cached(`g:${pattern}`, () => fnmatchToRegExp(pattern)).test(id);
}

/** Python `re.match`: anchored at the start only. An invalid pattern matches nothing. */
export function pcreMatch(id: string, pattern: string): boolean {
  let re: RegExp;
  try {
    re = cached(`p:${pattern}`, () => new RegExp(`^(?:${pattern})`, 'u'));
  } catch {
    return false;
  }
  return re.test(id);
}

/** Salt's list matcher: exact membership for an array; for a string, as a comma list. */
export function listMatch(id: string, tgt: string | readonly string[]): boolean {
  if (Array.isArray(tgt)) return tgt.includes(id);
  const s = tgt as string;
  return s === id || s.includes(`,${id},`) || s.startsWith(`${id},`) || s.endsWith(`,${id}`);
}

/** Splits a list target the way the CLI and master do: commas, or whitespace; empties dropped. */
export function splitListTarget(tgt: string | readonly string[]): string[] {
  if (Array.isArray(tgt)) return tgt.filter((s) => s.length > 0);
  const s = tgt as string;
  const parts = s.includes(',') ? s.split(',').map((p) => p.replace(/\s+/g, '')) : s.split(/\s+/);
  return parts.filter((p) => p.length > 0);
}

/** What an agent knows about itself beyond its id, for grain and address targets. */
export interface AgentFacts {
  /** Undefined on the dispatcher for an agent whose grains are not known: matched greedily. */
  grains?: Readonly<Record<string, unknown>>;
}

/** How to read a target, besides its type. */
export interface MatchOptions {
  /** Grain path delimiter for `grain`/`grain_pcre` (Salt's `--delimiter`, default `:`). */
  delimiter?: string;
  /** The master's nodegroups, for `nodegroup` targets and `N@` terms. */
  nodegroups?: Nodegroups;
}

function unsupported(type: string): never {
  throw new UnsupportedTargetError(`target type '${type}' is not supported yet`);
}

const ENGINE_TYPES = { G: 'grain', P: 'grain_pcre', I: 'pillar', J: 'pillar_pcre', S: 'ipcidr', E: 'pcre', L: 'list', R: 'range' } as const;

function termMatch(id: string, term: TargetWord, facts: AgentFacts): boolean {
  const grains = facts.grains;
  switch (term.engine) {
    case undefined:
      return globMatch(id, term.pattern);
    case 'G':
      return grains === undefined || grainMatch(term.pattern, grains, term.delimiter ?? DEFAULT_TARGET_DELIM);
    case 'P':
      return grains === undefined || grainPcreMatch(term.pattern, grains, term.delimiter ?? DEFAULT_TARGET_DELIM);
    case 'S':
      return grains === undefined || ipcidrMatch(term.pattern, grains);
    case 'E':
      return pcreMatch(id, term.pattern);
    case 'L':
      return listMatch(id, term.pattern);
    case 'I':
    case 'J':
    case 'R':
      return unsupported(ENGINE_TYPES[term.engine]);
    case 'N':
      return false; // expanded before evaluation
  }
}

/** Whether `id` (with its `facts`) is targeted by (`tgt`, `tgtType`). */
export function matchTarget(
  id: string,
  tgt: string | readonly string[],
  tgtType: TgtType,
  facts: AgentFacts = {},
  opts: MatchOptions = {},
): boolean {
  const grains = facts.grains;
  const delimiter = opts.delimiter ?? DEFAULT_TARGET_DELIM;
  switch (tgtType) {
    case 'glob':
      return typeof tgt === 'string' && globMatch(id, tgt);
    case 'pcre':
      return typeof tgt === 'string' && pcreMatch(id, tgt);
    case 'list':
      return listMatch(id, tgt);
    case 'grain':
      return typeof tgt === 'string' && (grains === undefined || grainMatch(tgt, grains, delimiter));
    case 'grain_pcre':
      return typeof tgt === 'string' && (grains === undefined || grainPcreMatch(tgt, grains, delimiter));
    case 'ipcidr':
      return typeof tgt === 'string' && (grains === undefined || ipcidrMatch(tgt, grains));
    case 'compound':
      return compoundMatch(tgt, (term) => termMatch(id, term, facts), { nodegroups: opts.nodegroups });
    case 'nodegroup': {
      // salt/matchers/nodegroup_match.py: only with the nodegroups configured.
      const groups = opts.nodegroups;
      if (typeof tgt !== 'string' || groups === undefined || !Object.hasOwn(groups, tgt)) return false;
      return compoundMatch(nodegroupComp(tgt, groups), (term) => termMatch(id, term, facts), { nodegroups: groups });
    }
    case 'pillar':
    case 'pillar_pcre':
    case 'range':
      return unsupported(tgtType);
  }
}

/** An agent the dispatcher knows: its id and, when known, its grains. */
export interface KnownAgent {
  id: string;
  grains?: Readonly<Record<string, unknown>>;
}

/** `L@` names of a compound target that no known agent has (not those right after `not`). */
function compoundMissing(tgt: string | readonly string[], known: ReadonlySet<string>, nodegroups: Nodegroups | undefined): string[] {
  const missing: string[] = [];
  compoundMatch(
    tgt,
    (term, negated) => {
      if (term.engine === 'L' && !negated) {
        for (const name of term.pattern.split(',')) if (name !== '' && !known.has(name)) missing.push(name);
      }
      return false;
    },
    { nodegroups },
  );
  return missing;
}

/**
 * The dispatcher's prediction of who answers: matching ids among the known agents, and for
 * list targets (and `L@` terms of compound targets) the names no agent has (Salt's `missing`).
 */
export function resolveTarget(
  known: Iterable<string | KnownAgent>,
  tgt: string | readonly string[],
  tgtType: TgtType,
  opts: MatchOptions = {},
): { minions: string[]; missing: string[] } {
  const minions: string[] = [];
  const ids = new Set<string>();
  for (const k of known) {
    const agent: KnownAgent = typeof k === 'string' ? { id: k } : k;
    ids.add(agent.id);
    if (matchTarget(agent.id, tgt, tgtType, { grains: agent.grains }, opts)) minions.push(agent.id);
  }
  minions.sort();
  let missing: string[] = [];
  if (tgtType === 'list') {
    const have = new Set(minions);
    missing = [...new Set(splitListTarget(tgt))].filter((n) => !have.has(n));
  } else if (tgtType === 'compound') {
    missing = [...new Set(compoundMissing(tgt, ids, opts.nodegroups))];
  }
  return { minions, missing };
}

/** Throws UnsupportedTargetError when a target uses a type (or a compound term) that cannot be matched. */
export function assertTargetSupported(tgt: string | readonly string[], tgtType: TgtType, opts: MatchOptions = {}): void {
  matchTarget('', tgt, tgtType, { grains: {} }, opts);
}
