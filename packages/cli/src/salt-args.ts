import { parse as parseYaml } from 'yaml';

/**
 * Salt's CLI argument handling (salt/utils/args.py `parse_input`, `yamlify_arg`):
 * `key=value` words become keyword arguments, everything else is positional, and each
 * value is read as YAML when that gives a number, boolean, null, list or mapping.
 */

const KWARG = /^([^\d\W][\w.-]*)=(?!=)(.*)$/su;

export function yamlifyArg(word: string): unknown {
  if (word === '' || /^\s|\s$/.test(word) || word.includes('#')) return word;
  // Salt's condition_input: a word that looks like a jid stays a string (a number would lose digits).
  if (/^\d{20}(_\d+)?$/.test(word)) return word;
  try {
    const value: unknown = parseYaml(word);
    if (value === null) return /^(null|None|~)$/i.test(word) ? null : word;
    if (typeof value === 'string') return word;
    if (typeof value === 'number' && !Number.isFinite(value)) return word;
    return value;
  } catch {
    return word;
  }
}

export function parseFunctionArgs(words: readonly string[]): { arg: unknown[]; kwarg: Record<string, unknown> } {
  const arg: unknown[] = [];
  const kwarg: Record<string, unknown> = {};
  for (const w of words) {
    const m = KWARG.exec(w);
    if (m) kwarg[m[1]!] = yamlifyArg(m[2]!);
    else arg.push(yamlifyArg(w));
  }
  return { arg, kwarg };
}
