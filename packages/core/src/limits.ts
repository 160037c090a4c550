/**
 * Limits on what enters at a boundary (a publish request, an event, a CLI argument, a YAML
 * document), each with a clear error instead of a stack overflow, a hang or an error message
 * that echoes megabytes back.
 */
export const Limits = {
  /** Nesting of JSON/YAML values (arguments, metadata, returner options, event data). */
  depth: 64,
  /** Nesting of a ledger event (a return holds a function's own data, so more than arguments). */
  eventDepth: 512,
  /** A target expression (a list target of a few thousand ids fits). */
  targetChars: 65_536,
  /** A function name. */
  funChars: 256,
  /** YAML aliases in one document (the `yaml` library's guard against alias bombs). */
  yamlAliases: 100,
  /** What an error message quotes of an input. */
  excerptChars: 80,
} as const;

export class InputLimitError extends Error {
  override readonly name = 'InputLimitError';
  readonly retryable = false;
}

/** The start of a long text for an error message: `xxxx… (100000 characters)`. */
export function excerpt(text: string, max: number = Limits.excerptChars): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}… (${text.length} characters)`;
}

/**
 * Whether a parsed JSON value nests deeper than `max` (arrays and objects), checked without
 * recursion so that the check itself cannot overflow the stack.
 */
export function nestsDeeperThan(value: unknown, max: number = Limits.depth): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (d + 1 > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push([child, d + 1]);
    }
  }
  return false;
}

/** Throws InputLimitError when `value` (named `what`) nests deeper than the limit. */
export function assertDepth(value: unknown, what: string, max: number = Limits.depth): void {
  if (nestsDeeperThan(value, max)) throw new InputLimitError(`${what} is nested more than ${max} levels deep`);
}

/** A zod error as one line per problem, `path: message`, each quoting at most an excerpt. */
export function zodIssuesText(error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> }): string {
  return error.issues
    .slice(0, 5)
    .map((i) => {
      const where = i.path.map(String).join('.');
      const msg = excerpt(i.message, 200);
      return where === '' ? msg : `${where}: ${msg}`;
    })
    .join('\n');
}

/** The text for a YAML parser's error: a depth or alias limit said plainly, anything else shortened. */
export function yamlErrorText(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/Maximum call stack/.test(msg)) return `nested too deeply to read (keep it under ${Limits.depth} levels)`;
  if (/alias/i.test(msg)) return `more than ${Limits.yamlAliases} YAML aliases (a resource exhaustion guard)`;
  return excerpt(msg, 300);
}
