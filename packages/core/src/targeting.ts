import type { TgtType } from './events/common.js';

/**
 * Target matching as Salt's minions do it (salt/matchers): each agent id decides for itself
 * whether a job is meant for it. `glob`, `pcre` and `list` are supported.
 */

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

/** Python's `fnmatch.translate`: whole-string match; `*`, `?`, `[seq]`, `[!seq]`; no escapes. */
export function fnmatchToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length;) {
    const c = pattern[i++]!;
    if (c === '*') {
      out += '.*';
      while (pattern[i] === '*') i++;
    } else if (c === '?') {
      out += '.';
    } else if (c === '[') {
      let j = i;
      if (pattern[j] === '!') j++;
      if (pattern[j] === ']') j++;
      while (j < pattern.length && pattern[j] !== ']') j++;
      if (j >= pattern.length) {
        out += '\\[';
      } else {
        let body = pattern.slice(i, j).replace(/\\/g, '\\\\');
        i = j + 1;
        if (body.startsWith('!')) body = '^' + body.slice(1);
        else if (body.startsWith('^')) body = '\\' + body;
        out += body.length === 0 ? '(?!)' : `[${body}]`;
      }
    } else {
      out += c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
    }
  }
  return new RegExp(`^(?:${out})$`, 's');
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
  grains?: Readonly<Record<string, unknown>>;
}

/** Whether `id` (with its `facts`) is targeted by (`tgt`, `tgtType`). */
export function matchTarget(id: string, tgt: string | readonly string[], tgtType: TgtType, _facts: AgentFacts = {}): boolean {
  switch (tgtType) {
    case 'glob':
      return typeof tgt === 'string' && globMatch(id, tgt);
    case 'pcre':
      return typeof tgt === 'string' && pcreMatch(id, tgt);
    case 'list':
      return listMatch(id, tgt);
    default:
      throw new UnsupportedTargetError(`target type '${tgtType}' is not supported yet`);
  }
}

/**
 * The dispatcher's prediction of who answers: matching ids among the known agents, and for
 * list targets the names no agent has (Salt's `missing`).
 */
export function resolveTarget(
  known: Iterable<string>,
  tgt: string | readonly string[],
  tgtType: TgtType,
): { minions: string[]; missing: string[] } {
  const minions: string[] = [];
  for (const id of known) if (matchTarget(id, tgt, tgtType)) minions.push(id);
  minions.sort();
  let missing: string[] = [];
  if (tgtType === 'list') {
    const have = new Set(minions);
    missing = [...new Set(splitListTarget(tgt))].filter((n) => !have.has(n));
  }
  return { minions, missing };
}
