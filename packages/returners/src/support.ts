/** Helpers shared by the built-in returners: option lookup for one call, Salt's text forms. */
import { getReturnerOptions, type ReturnLoad, type ReturnerContext } from '@jobledger/core';

/**
 * A returner's options for one call, as Salt's `_get_options(ret)`: the job's
 * `--return_config` / `--return_kwargs` (carried in `ret`, else given to the registry) over
 * the configuration, over the returner's defaults.
 */
export function returnerOptions(
  ctx: ReturnerContext,
  prefix: string,
  attrs: readonly string[] | Readonly<Record<string, string>>,
  defaults: Readonly<Record<string, unknown>> = {},
  ret?: ReturnLoad,
): Record<string, unknown> {
  const retConfig = typeof ret?.ret_config === 'string' && ret.ret_config !== '' ? ret.ret_config : ctx.retConfig;
  const retKwargs = isPlainObject(ret?.ret_kwargs) ? ret.ret_kwargs : ctx.retKwargs;
  return getReturnerOptions(prefix, attrs, { config: ctx.config, retConfig, retKwargs }, defaults);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A scalar option as text; objects as JSON. */
export function optionText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v) ?? '';
}

/** The `code` of an error (errno name, SQLSTATE…), `''` when it has none. */
export function errorCode(err: unknown): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' || typeof code === 'number' ? String(code) : '';
}

/** The message of any thrown value. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Python's `json.dumps(value)` with its default separators (`", "` and `": "`), as Salt writes
 * returns and events to syslog and rawfile_json. Non-finite numbers become `null`.
 */
export function saltJsonDumps(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return `[${value.map((v) => saltJsonDumps(v === undefined ? null : v)).join(', ')}]`;
  if (typeof value === 'object') {
    const withJson = value as { toJSON?: () => unknown };
    if (typeof withJson.toJSON === 'function') return saltJsonDumps(withJson.toJSON());
    const parts: string[] = [];
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined || typeof v === 'function') continue;
      parts.push(`${JSON.stringify(k)}: ${saltJsonDumps(v)}`);
    }
    return `{${parts.join(', ')}}`;
  }
  if (typeof value === 'bigint') return value.toString();
  return JSON.stringify(value) ?? 'null';
}

function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') {
    const quote = value.includes("'") && !value.includes('"') ? '"' : "'";
    const body = value
      .replace(/\\/g, '\\\\')
      .replace(/\n/g, '\\n')
      .replace(/\r/g, '\\r')
      .replace(/\t/g, '\\t')
      .replace(quote === "'" ? /'/g : /"/g, `\\${quote}`);
    return `${quote}${body}${quote}`;
  }
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'nan';
    if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`)
      .join(', ')}}`;
  }
  return optionText(value);
}

/** Python's `str(value)`: strings as they are, containers and constants in Python's repr. */
export function pyStr(value: unknown): string {
  return typeof value === 'string' ? value : pyRepr(value);
}
