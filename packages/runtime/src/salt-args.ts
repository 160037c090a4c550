import { parse as parseYaml } from 'yaml';
import { InputLimitError, Limits, excerpt, nestsDeeperThan, yamlErrorText } from '@jobledger/core';

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
  let value: unknown;
  try {
    value = parseYaml(word, { maxAliasCount: Limits.yamlAliases });
  } catch (err) {
    // Salt passes a word that is not YAML on as a string; a word too deep or too aliased to read is an error.
    if (/Maximum call stack|alias/i.test((err as Error).message))
      throw new InputLimitError(`argument ${excerpt(word, 40)}: ${yamlErrorText(err)}`);
    return word;
  }
  if (nestsDeeperThan(value, Limits.depth))
    throw new InputLimitError(`argument ${excerpt(word, 40)} is nested more than ${Limits.depth} levels deep`);
  if (value === null) return /^(null|None|~)$/i.test(word) ? null : word;
  if (typeof value === 'string') return word;
  if (typeof value === 'number' && !Number.isFinite(value)) return word;
  return value;
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
