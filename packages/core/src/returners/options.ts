/**
 * Returner option lookup, after Salt's `salt/returners/__init__.py` (`get_returner_options`,
 * `_fetch_ret_config`, `_fetch_option`, `_options_browser`), plus the event-return filter of
 * `salt/utils/event.py` (`EventReturn._filter`) and `salt/utils/job.py` `get_keep_jobs_seconds`.
 *
 * An option `<opt>` of a returner whose prefix is `<prefix>` (`returner.pgjsonb`, `smtp`,
 * `rawfile_json`…) is found, first hit wins:
 *  1. with `--return_config NAME`: `<opt>` of the mapping `NAME.<prefix>`, or the flat key
 *     `NAME.<prefix>.<opt>`;
 *  2. `<opt>` of the mapping under `<prefix>`, or the flat key `<prefix>.<opt>`;
 *  3. the returner's default, if it has one;
 * and `--return_kwargs` then overrides any option, last.
 *
 * Differences from Salt, both deliberate:
 *  - A configured falsy value (`0`, `false`, `[]`, `''`) is kept, in the `--return_config`
 *    location too (Salt's bug #63980; Salt's fix still treats `''` as "not set"). A `null`
 *    (YAML's empty `key:`) is "not set", as in Salt: the next location or the default is used.
 *  - A dotted key may also be written as nested mappings (`returner: {pgjsonb: {host: …}}`),
 *    which Salt's `config.option` does not read; the literal dotted key wins when both exist.
 */
import { fnmatchToRegExp } from '../fnmatch.js';
import type { ReturnerEvent } from './contract.js';

type Mapping = Readonly<Record<string, unknown>>;

/** Where a returner's options come from: its configuration and the job's return options. */
export interface ReturnerOptionsSource {
  config: Mapping;
  /** `--return_config NAME`. */
  retConfig?: string | undefined;
  /** `--return_kwargs '{…}'`. */
  retKwargs?: Mapping | undefined;
}

function isMapping(v: unknown): v is Mapping {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The value of a dotted key: the literal key first, then (longest literal head first) a
 * mapping under a head with the rest looked up inside it. `undefined` when absent.
 */
export function configValue(config: Mapping, key: string): unknown {
  if (Object.prototype.hasOwnProperty.call(config, key)) return config[key];
  const parts = key.split('.');
  for (let i = parts.length - 1; i >= 1; i--) {
    const head = parts.slice(0, i).join('.');
    if (!Object.prototype.hasOwnProperty.call(config, head)) continue;
    const inner = config[head];
    if (!isMapping(inner)) continue;
    const found = configValue(inner, parts.slice(i).join('.'));
    if (found !== undefined) return found;
  }
  return undefined;
}

/** One option at one location: `<opt>` of the mapping `<base>` first (as Salt), then the flat key. */
function optionAt(config: Mapping, base: string, opt: string): unknown {
  const nested = configValue(config, base);
  if (isMapping(nested) && Object.prototype.hasOwnProperty.call(nested, opt)) return nested[opt];
  return configValue(config, `${base}.${opt}`);
}

/**
 * Salt's `_fetch_option`: the configured value of `opt` for the returner `prefix`, the
 * `--return_config` location first; `undefined` when set nowhere (or set to `null`).
 */
export function fetchReturnerOption(config: Mapping, retConfig: string | undefined, prefix: string, opt: string): unknown {
  if (retConfig) {
    const override = optionAt(config, `${retConfig}.${prefix}`, opt);
    if (override !== undefined && override !== null) return override;
  }
  const value = optionAt(config, prefix, opt);
  return value === null ? undefined : value;
}

/**
 * Salt's `get_returner_options`: `attrs` maps each option name to its key in the
 * configuration (a list means the same names). Options set nowhere and without a default are
 * absent from the result; `--return_kwargs` entries are merged last (all of them, as Salt does).
 */
export function getReturnerOptions(
  prefix: string,
  attrs: readonly string[] | Readonly<Record<string, string>>,
  source: ReturnerOptionsSource,
  defaults: Mapping = {},
): Record<string, unknown> {
  const pairs: [string, string][] = Array.isArray(attrs)
    ? (attrs as readonly string[]).map((a) => [a, a])
    : Object.entries(attrs as Readonly<Record<string, string>>);
  const out: Record<string, unknown> = {};
  for (const [option, key] of pairs) {
    const value = fetchReturnerOption(source.config, source.retConfig, prefix, key);
    if (value !== undefined) out[option] = value;
    else if (Object.prototype.hasOwnProperty.call(defaults, option)) out[option] = defaults[option];
  }
  if (source.retKwargs) Object.assign(out, source.retKwargs);
  return out;
}

function globList(v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x)));
  return [JSON.stringify(v)];
}

/**
 * Salt's `event_return_whitelist` / `event_return_blacklist` filter: with a whitelist only
 * tags matching one of its fnmatch globs pass; the blacklist then removes matches. Events whose
 * data carries `__peer_id` (forwarded from a peer master) are always dropped.
 */
export function eventReturnFilter(whitelist: unknown, blacklist: unknown): (event: ReturnerEvent) => boolean {
  const allow = globList(whitelist).map(fnmatchToRegExp);
  const deny = globList(blacklist).map(fnmatchToRegExp);
  return (event) => {
    if (isMapping(event.data) && Object.prototype.hasOwnProperty.call(event.data, '__peer_id')) return false;
    if (allow.length > 0 && !allow.some((re) => re.test(event.tag))) return false;
    return !deny.some((re) => re.test(event.tag));
  };
}

/**
 * Salt's `get_keep_jobs_seconds`: `keep_jobs_seconds` (default 86400), unless it is still
 * 86400 and the deprecated `keep_jobs` (hours, default 24) was changed.
 */
export function keepJobsSeconds(config: Mapping): number {
  const seconds = Number(config['keep_jobs_seconds'] ?? 86400);
  const hours = Number(config['keep_jobs'] ?? 24);
  if (seconds === 86400 && hours !== 24) return hours * 3600;
  return seconds;
}
