/**
 * Salt's compound targets (salt/matchers/compound_match.py, and the master's prediction in
 * salt/utils/minions.py `_check_compound_minions`): words split on whitespace; `and`, `or`,
 * `not`, `(`, `)`; `X@pattern` terms (`G@ P@ I@ J@ L@ N@ S@ E@ R@`, G/P/I/J may carry a custom
 * delimiter before the `@`, e.g. `G%@planets%merc*`); any other word is a glob on the id. A `not`
 * right after a term implies `and`; a leading `and`/`or` (also right after `(`) is invalid, and
 * an invalid expression matches nothing. `N@` terms are expanded in place.
 */
import { COMPOUND_OPERATORS, nodegroupComp, type Nodegroups } from './nodegroups.js';

export type CompoundEngine = 'G' | 'P' | 'I' | 'J' | 'L' | 'N' | 'S' | 'E' | 'R';

/** One word of a compound target: an engine term, or (no engine) a glob. */
export interface TargetWord {
  engine?: CompoundEngine;
  /** A custom delimiter (G, P, I, J only). */
  delimiter?: string;
  pattern: string;
}

// salt/utils/minions.py TARGET_REX
const TARGET_REX = /^(?:([GPIJLNSER])((?<=[GPIJ]).)?@)?(.+)$/;

/** Salt's `parse_target(word)`. */
export function parseTargetWord(word: string): TargetWord {
  const m = TARGET_REX.exec(word);
  if (!m) return { pattern: word };
  const out: TargetWord = { pattern: m[3]! };
  if (m[1] !== undefined) out.engine = m[1] as CompoundEngine;
  if (m[2] !== undefined) out.delimiter = m[2];
  return out;
}

/** A term's truth for one agent. `negated` is true when the term directly follows `not`. */
export type TermEvaluator = (term: TargetWord, negated: boolean) => boolean;

type Token = boolean | 'and' | 'or' | 'not' | '(' | ')';

class InvalidCompound extends Error {}

/** Python's `eval()` of the `True`/`False`/operator string Salt builds; invalid → throws. */
function evaluate(tokens: readonly Token[]): boolean {
  let i = 0;
  const peek = (): Token | undefined => tokens[i];
  const orTest = (): boolean => {
    let v = andTest();
    while (peek() === 'or') {
      i++;
      const r = andTest();
      v = v || r;
    }
    return v;
  };
  const andTest = (): boolean => {
    let v = notTest();
    while (peek() === 'and') {
      i++;
      const r = notTest();
      v = v && r;
    }
    return v;
  };
  const notTest = (): boolean => {
    if (peek() === 'not') {
      i++;
      return !notTest();
    }
    return atom();
  };
  const atom = (): boolean => {
    const t = tokens[i++];
    if (typeof t === 'boolean') return t;
    if (t === '(') {
      if (peek() === ')') {
        i++;
        return false; // `()` is an empty tuple: falsy
      }
      const v = orTest();
      if (tokens[i++] !== ')') throw new InvalidCompound();
      return v;
    }
    throw new InvalidCompound();
  };
  const v = orTest();
  // Anything left (`True True`, `True ( … )` — a call of a bool in Python) is an error.
  if (i !== tokens.length) throw new InvalidCompound();
  return v;
}

export interface CompoundOptions {
  /** Nodegroups for `N@` terms (an agent has none: its `N@` terms vanish). */
  nodegroups?: Nodegroups;
}

/**
 * Evaluates a compound target for one agent: every term is evaluated (in order) through
 * `term`, then the expression; an invalid expression is `false`.
 */
export function compoundMatch(tgt: string | readonly string[], term: TermEvaluator, opts: CompoundOptions = {}): boolean {
  const words = typeof tgt === 'string' ? tgt.split(/\s+/).filter((w) => w !== '') : [...tgt];
  const results: Token[] = [];
  while (words.length > 0) {
    const word = words.shift()!;
    if (COMPOUND_OPERATORS.includes(word)) {
      const op = word as 'and' | 'or' | 'not' | '(' | ')';
      const last = results.at(-1);
      if (last !== undefined) {
        if (last === '(' && (op === 'and' || op === 'or')) return false; // invalid operator after "("
        if (op === 'not' && last !== 'and' && last !== 'or' && last !== '(') results.push('and');
        results.push(op);
      } else {
        if (op !== '(' && op !== 'not') return false; // starts with a binary operator
        results.push(op);
      }
      continue;
    }
    const parsed = parseTargetWord(word);
    if (parsed.engine === 'N') {
      // A nodegroup is evaluated in place.
      const decomposed = nodegroupComp(parsed.pattern, opts.nodegroups ?? {});
      if (decomposed.length > 0) words.unshift(...decomposed);
      continue;
    }
    results.push(term(parsed, results.at(-1) === 'not'));
  }
  try {
    return evaluate(results);
  } catch (err) {
    if (err instanceof InvalidCompound) return false;
    throw err;
  }
}

/**
 * Expands every `N@group` word of a compound target in place (what the dispatcher does before
 * publishing, so agents never need the master's nodegroups). Unknown groups vanish, as in Salt.
 */
export function expandCompoundNodegroups(tgt: string | readonly string[], nodegroups: Nodegroups): string | string[] {
  const words = typeof tgt === 'string' ? tgt.split(/\s+/).filter((w) => w !== '') : [...tgt];
  if (!words.some((w) => parseTargetWord(w).engine === 'N')) return typeof tgt === 'string' ? tgt : [...tgt];
  const out: string[] = [];
  while (words.length > 0) {
    const word = words.shift()!;
    const parsed = COMPOUND_OPERATORS.includes(word) ? undefined : parseTargetWord(word);
    if (parsed?.engine === 'N') {
      words.unshift(...nodegroupComp(parsed.pattern, nodegroups));
      continue;
    }
    out.push(word);
  }
  return typeof tgt === 'string' ? out.join(' ') : out;
}
