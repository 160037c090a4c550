/**
 * Python-style argument binding for execution functions: Salt publishes `arg` as positional
 * values followed by a `{…, __kwarg__: true}` mapping, and the minion binds them to the
 * function's signature, raising Python's TypeError texts on a mismatch.
 */

/** A parameter: a name (required) or a name with a default. */
export type Param = string | { name: string; default: unknown };

export interface Signature {
  /** The Python function name used in error texts (`echo` for `test.echo`). */
  name: string;
  params: readonly Param[];
  /** Accepts `*args`. */
  varargs?: boolean;
  /** Accepts `**kwargs`. */
  varkw?: boolean;
}

export interface BoundArgs {
  /** Named parameters, defaults filled in. */
  named: Record<string, unknown>;
  /** Extra positional values (`*args`). */
  rest: unknown[];
  /** Extra keyword values (`**kwargs`). */
  kwargs: Record<string, unknown>;
}

/** Python's TypeError on a call that does not fit the signature. */
export class InvalidArgumentsError extends Error {
  override readonly name = 'InvalidArgumentsError';
  readonly retryable = false;
}

/** Salt's `KWARG_REGEX`: `key=value` in a positional string. */
const KWARG = /^([A-Za-z_][\w.-]*)=(?!=)([\s\S]*)$/u;

function isKwargMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && (v as Record<string, unknown>).__kwarg__ === true;
}

/** Splits Salt's `arg` into positional values and keyword values (without `__kwarg__`). */
export function splitArg(arg: readonly unknown[]): { args: unknown[]; kwargs: Record<string, unknown> } {
  const args: unknown[] = [];
  const kwargs: Record<string, unknown> = {};
  for (const a of arg) {
    if (isKwargMapping(a)) {
      for (const [k, v] of Object.entries(a)) if (k !== '__kwarg__') kwargs[k] = v;
    } else {
      args.push(a);
    }
  }
  return { args, kwargs };
}

const paramName = (p: Param) => (typeof p === 'string' ? p : p.name);

function quoteList(names: string[]): string {
  const q = names.map((n) => `'${n}'`);
  if (q.length <= 1) return q.join('');
  if (q.length === 2) return `${q[0]} and ${q[1]}`;
  return `${q.slice(0, -1).join(', ')}, and ${q[q.length - 1]}`;
}

/**
 * Binds positional and keyword values to `sig` as Python (and Salt's `load_args_and_kwargs`)
 * would. A positional `key=value` string becomes a keyword value when the function takes that
 * name or `**kwargs`. Throws InvalidArgumentsError with Python's message.
 */
export function bindArgs(sig: Signature, args: readonly unknown[], kwargsIn: Readonly<Record<string, unknown>>): BoundArgs {
  const positional: unknown[] = [];
  const kw: Record<string, unknown> = { ...kwargsIn };
  const names = sig.params.map(paramName);
  for (const a of args) {
    const m = typeof a === 'string' ? KWARG.exec(a) : null;
    if (m && (sig.varkw || names.includes(m[1]!))) kw[m[1]!] = m[2]!;
    else positional.push(a);
  }

  const named: Record<string, unknown> = {};
  const n = Math.min(positional.length, names.length);
  for (let i = 0; i < n; i++) named[names[i]!] = positional[i];
  const rest = positional.slice(n);
  if (rest.length > 0 && !sig.varargs) {
    const required = sig.params.filter((p) => typeof p === 'string').length;
    const max = names.length;
    const given = positional.length;
    const takes =
      required === max ? `${max} positional argument${max === 1 ? '' : 's'}` : `from ${required} to ${max} positional arguments`;
    throw new InvalidArgumentsError(`${sig.name}() takes ${takes} but ${given} ${given === 1 ? 'was' : 'were'} given`);
  }

  const kwargs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(kw)) {
    if (names.includes(k)) {
      if (k in named) throw new InvalidArgumentsError(`${sig.name}() got multiple values for argument '${k}'`);
      named[k] = v;
    } else if (sig.varkw) {
      kwargs[k] = v;
    } else {
      throw new InvalidArgumentsError(`${sig.name}() got an unexpected keyword argument '${k}'`);
    }
  }

  const missing: string[] = [];
  for (const p of sig.params) {
    const name = paramName(p);
    if (name in named) continue;
    if (typeof p === 'string') missing.push(name);
    else named[name] = p.default;
  }
  if (missing.length > 0) {
    throw new InvalidArgumentsError(
      `${sig.name}() missing ${missing.length} required positional argument${missing.length === 1 ? '' : 's'}: ${quoteList(missing)}`,
    );
  }
  return { named, rest, kwargs };
}
