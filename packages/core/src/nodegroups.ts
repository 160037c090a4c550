/**
 * Salt's nodegroups (salt/utils/minions.py `nodegroup_comp`, `_nodegroup_regex`): a named
 * compound target from the master configuration, a string (split on whitespace) or a list of
 * words. `N@<group>` words are expanded recursively, each nested expansion wrapped in `(` … `)`;
 * a definition with no operators, no `*` and no `X@` prefix is a list of ids (`L@a,b,c`), or a
 * regular expression (`E@a,b,c`) when a word holds one of `( [ { \ ? } ] )`. A circular or
 * unknown group expands to nothing.
 */

/** `nodegroups:` of the master configuration: group name → definition. */
export type Nodegroups = Readonly<Record<string, unknown>>;

export const COMPOUND_OPERATORS: readonly string[] = ['and', 'or', 'not', '(', ')'];

const GROUP_TYPE = /^[A-Z]@/;
const REGEX_CHARS = ['(', '[', '{', '\\', '?', '}', ']', ')'];

/** Python `str()` of a YAML scalar in a list definition. */
function word(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value) ?? '';
}

/** `_nodegroup_regex`: an operator-free, prefix-free, wildcard-free definition as `L@…` or `E@…`. */
function asListOrRegex(words: readonly string[]): string[] | undefined {
  if (words.some((w) => COMPOUND_OPERATORS.includes(w))) return undefined;
  if (words.some((w) => w.includes('*') || GROUP_TYPE.test(w))) return undefined;
  const regex = words.some((w) => REGEX_CHARS.some((c) => w.includes(c)));
  return [(regex ? 'E@' : 'L@') + words.join(',')];
}

function definitionWords(definition: unknown): string[] | undefined {
  if (typeof definition === 'string') return definition.split(/\s+/).filter((w) => w !== '');
  if (Array.isArray(definition)) return definition.map(word);
  return undefined;
}

/**
 * `nodegroup_comp(nodegroup, nodegroups)`: the compound words of a nodegroup; an empty list for
 * an unknown, circular or malformed group (Salt's `""`).
 */
export function nodegroupComp(nodegroup: string, nodegroups: Nodegroups, skip?: Set<string>, firstCall = true): string[] {
  let seen = skip;
  if (seen === undefined) seen = new Set();
  else if (seen.has(nodegroup)) return []; // illegal nested (circular) nodegroup
  if (!Object.hasOwn(nodegroups, nodegroup)) return [];
  const words = definitionWords(nodegroups[nodegroup]);
  if (words === undefined) return [];

  seen.add(nodegroup);
  let expanded = false;
  const ret: string[] = [];
  for (const w of words) {
    if (COMPOUND_OPERATORS.includes(w)) ret.push(w);
    else if (w.length >= 3 && w.startsWith('N@')) {
      expanded = true;
      ret.push(...nodegroupComp(w.slice(2), nodegroups, seen, false));
    } else ret.push(w);
  }
  if (ret.length > 0) {
    ret.unshift('(');
    ret.push(')');
  }
  seen.delete(nodegroup);

  if (expanded || !firstCall) {
    if (!firstCall) return asListOrRegex(words) ?? ret;
    return ret;
  }
  // No nested nodegroups: the original definition (for backwards compatibility).
  return asListOrRegex(words) ?? words;
}

/** Whether `name` is a configured nodegroup. */
export function hasNodegroup(nodegroups: Nodegroups, name: string): boolean {
  return Object.hasOwn(nodegroups, name);
}
