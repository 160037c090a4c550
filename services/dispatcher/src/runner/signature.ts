/**
 * Python-style binding of a runner call's arguments to the function's signature, with
 * Python's TypeError texts (Salt prints them as "Passed invalid arguments: …").
 */

export interface Param {
  name: string;
  /** Absent: the parameter is required. */
  default?: unknown;
}

export interface Signature {
  /** The Python function name used in error texts (`lookup_jid`). */
  name: string;
  params: readonly Param[];
}

export class InvalidArgumentsError extends Error {
  override readonly name = 'InvalidArgumentsError';
  readonly retryable = false;
}

const required = (p: Param) => !('default' in p);

function quoteList(names: string[]): string {
  const q = names.map((n) => `'${n}'`);
  if (q.length <= 1) return q.join('');
  if (q.length === 2) return `${q[0]} and ${q[1]}`;
  return `${q.slice(0, -1).join(', ')}, and ${q[q.length - 1]}`;
}

/** Binds positional and keyword values to `sig`; throws InvalidArgumentsError with Python's message. */
export function bindArgs(sig: Signature, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const names = sig.params.map((p) => p.name);
  if (args.length > names.length) {
    const min = sig.params.filter(required).length;
    const max = names.length;
    const takes = min === max ? `${max} positional argument${max === 1 ? '' : 's'}` : `from ${min} to ${max} positional arguments`;
    const given = args.length;
    throw new InvalidArgumentsError(`${sig.name}() takes ${takes} but ${given} ${given === 1 ? 'was' : 'were'} given`);
  }
  const bound: Record<string, unknown> = {};
  args.forEach((v, i) => (bound[names[i]!] = v));
  for (const [k, v] of Object.entries(kwargs)) {
    if (!names.includes(k)) throw new InvalidArgumentsError(`${sig.name}() got an unexpected keyword argument '${k}'`);
    if (k in bound) throw new InvalidArgumentsError(`${sig.name}() got multiple values for argument '${k}'`);
    bound[k] = v;
  }
  const missing = sig.params.filter((p) => required(p) && !(p.name in bound)).map((p) => p.name);
  if (missing.length > 0) {
    throw new InvalidArgumentsError(
      `${sig.name}() missing ${missing.length} required positional argument${missing.length === 1 ? '' : 's'}: ${quoteList(missing)}`,
    );
  }
  for (const p of sig.params) if (!(p.name in bound)) bound[p.name] = p.default;
  return bound;
}
