/**
 * Salt's grain matching (salt/matchers/grain_match.py, grain_pcre_match.py) and the
 * `subdict_match` / `traverse_dict_and_list` helpers of salt/utils/data.py it rests on.
 * `path:pattern` is split on the delimiter and deeper paths are tried first; value and
 * pattern are both lower-cased, so grain globs are case-insensitive; a list value matches if
 * any member matches.
 */
import { fnmatchToRegExp } from './fnmatch.js';

export const DEFAULT_TARGET_DELIM = ':';

type Mapping = Record<string, unknown>;

function isMapping(v: unknown): v is Mapping {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Python `repr()` of a number as JSON can carry it (integral values print as ints). */
function pyNumber(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (Number.isInteger(n)) return BigInt(n).toString();
  const [mantissa, exp] = n.toExponential().split('e');
  const e = Number(exp);
  if (e < -4) return `${mantissa}e-${String(-e).padStart(2, '0')}`;
  if (e >= 16) return `${mantissa}e+${String(e).padStart(2, '0')}`;
  return String(n);
}

function pyStringRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else out += ch;
  }
  return out + quote;
}

function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return pyNumber(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return pyStringRepr(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (isMapping(v))
    return `{${Object.entries(v)
      .map(([k, x]) => `${pyStringRepr(k)}: ${pyRepr(x)}`)
      .join(', ')}}`;
  return pyStringRepr(typeof v === 'symbol' || typeof v === 'function' ? v.toString() : '');
}

/** Python `str(value)`. */
export function pyStr(v: unknown): string {
  return typeof v === 'string' ? v : pyRepr(v);
}

/** Python `str.lower()` (full Unicode lower-casing, close enough to JS's). */
function lower(s: string): string {
  return s.toLowerCase();
}

/** Python `re.match(pattern, target)`; an invalid pattern matches nothing. */
export function pyReMatch(pattern: string, target: string): boolean {
  let re: RegExp;
  try {
    // Python's named groups `(?P<n>…)` / `(?P=n)` in JavaScript's spelling.
    const js = pattern.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
    re = new RegExp(`^(?:${js})`, 'u');
  } catch {
    return false;
  }
  return re.test(target);
}

interface MatchFlags {
  regex: boolean;
  exact: boolean;
}

function valueMatch(target: unknown, pattern: string, f: MatchFlags): boolean {
  const t = lower(pyStr(target));
  const p = lower(pattern);
  if (f.regex) return pyReMatch(p, t);
  if (f.exact) return t === p;
  return fnmatchToRegExp(p).test(t);
}

function isEmptyMapping(v: unknown): boolean {
  return isMapping(v) && Object.keys(v).length === 0;
}

/**
 * Salt's `traverse_dict_and_list`: `a:b:0` walks mappings by key and lists by index (or by the
 * key of an embedded mapping); anything that cannot be walked gives `fallback`.
 */
export function traverseDictAndList(data: unknown, key: string, fallback: unknown, delimiter = DEFAULT_TARGET_DELIM): unknown {
  let ptr = data;
  for (const each of key.split(delimiter)) {
    if (Array.isArray(ptr)) {
      // Python int(): optional sign and surrounding whitespace. A numeric part indexes the
      // list (embedded mappings are searched with an int key, which JSON never has).
      if (!/^\s*[+-]?\d+\s*$/.test(each)) {
        const embedded = ptr.find((x): x is Mapping => isMapping(x) && Object.hasOwn(x, each));
        if (embedded === undefined) return fallback;
        ptr = embedded[each];
        continue;
      }
      const idx = Number(each.trim());
      const i = idx < 0 ? ptr.length + idx : idx;
      if (i < 0 || i >= ptr.length) return fallback;
      ptr = ptr[i];
    } else if (isMapping(ptr)) {
      if (!Object.hasOwn(ptr, each)) return fallback;
      ptr = ptr[each];
    } else {
      return fallback;
    }
  }
  return ptr;
}

function dictMatch(target: Mapping, pattern: string, f: MatchFlags): boolean {
  let p = pattern;
  const wildcard = p.startsWith('*:');
  if (wildcard) p = p.slice(2);
  if (p === '*') return true; // the key exists
  if (Object.hasOwn(target, p)) return true; // a key of that name
  if (subdictMatch(target, p, DEFAULT_TARGET_DELIM, f)) return true;
  if (wildcard) {
    for (const value of Object.values(target)) {
      if (isMapping(value)) {
        if (dictMatch(value, p, f)) return true;
      } else if (Array.isArray(value)) {
        if (value.some((item) => valueMatch(item, p, f))) return true;
      } else if (valueMatch(value, p, f)) {
        return true;
      }
    }
  }
  return false;
}

/** Salt's `subdict_match(data, expr, delimiter, regex_match, exact_match)`. */
export function subdictMatch(data: unknown, expr: string, delimiter = DEFAULT_TARGET_DELIM, flags: Partial<MatchFlags> = {}): boolean {
  const f: MatchFlags = { regex: flags.regex ?? false, exact: flags.exact ?? false };
  const splits = expr.split(delimiter);
  if (splits.length === 1) return false; // no delimiter: cannot be a match
  for (let idx = splits.length - 1; idx > 0; idx--) {
    const key = splits.slice(0, idx).join(delimiter);
    let matchstr: string;
    let match: unknown;
    if (key === '*') {
      matchstr = expr;
      match = data;
    } else {
      matchstr = splits.slice(idx).join(delimiter);
      match = traverseDictAndList(data, key, {}, delimiter);
    }
    if (isEmptyMapping(match)) continue;
    if (isMapping(match)) {
      if (dictMatch(match, matchstr, f)) return true;
      continue;
    }
    if (Array.isArray(match)) {
      for (const member of match) {
        if (isMapping(member) && dictMatch(member, matchstr, f)) return true;
        if (valueMatch(member, matchstr, f)) return true;
      }
      continue;
    }
    if (valueMatch(match, matchstr, f)) return true;
  }
  return false;
}

/** `-G path:glob` against an agent's grains. */
export function grainMatch(tgt: string, grains: Readonly<Record<string, unknown>>, delimiter = DEFAULT_TARGET_DELIM): boolean {
  if (!tgt.includes(delimiter)) return false; // "insufficient arguments for grains match"
  return subdictMatch(grains, tgt, delimiter);
}

/** `-P path:regex` against an agent's grains (`re.match` on the lower-cased value). */
export function grainPcreMatch(tgt: string, grains: Readonly<Record<string, unknown>>, delimiter = DEFAULT_TARGET_DELIM): boolean {
  if (!tgt.includes(delimiter)) return false;
  return subdictMatch(grains, tgt, delimiter, { regex: true });
}
