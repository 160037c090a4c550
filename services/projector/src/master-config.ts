import path from 'node:path';
import { ConfigError, configFilePath, readConfigFile, type ConfigMapping } from '@jobledger/runtime';

/**
 * The keys of Salt's master configuration the projector acts on, from
 * `$JOBLEDGER_HOME/master.yaml` (or `JOBLEDGER_MASTER_CONFIG`). Read once at start: a changed
 * file takes effect when the projector is restarted.
 */
export interface MasterReturnersConfig {
  /** The file it was read from. */
  file: string;
  /** `master_job_cache`: the returner fed every job's publish load and returns; unset = jobledger's own tables only. */
  masterJobCache?: string;
  /** `event_return`: the returners fed every event (a name or a list in the file). */
  eventReturn: string[];
  /** `event_return_whitelist`: fnmatch globs on tags; when not empty only matching events pass. */
  eventReturnWhitelist: string[];
  /** `event_return_blacklist`: fnmatch globs on tags; matching events never pass. */
  eventReturnBlacklist: string[];
  /** Salt's `extension_modules` (default `$JOBLEDGER_HOME/extmods`): plugin returners are in its `returners/`. */
  extensionModules: string;
  /**
   * Salt's master `cachedir` (default `$JOBLEDGER_HOME/cache/master`, apart from the agents'
   * `$JOBLEDGER_HOME/cache`): `local_cache` as `master_job_cache` writes `<cachedir>/jobs`.
   */
  cachedir: string;
  /** `id`: the master id, when the file sets one. */
  id?: string;
  /**
   * The whole mapping, with `cachedir` and `extension_modules` resolved: where returners read
   * their options (`returner.pgjsonb.host`, …).
   */
  mapping: ConfigMapping;
}

function names(file: string, key: string, value: unknown): string[] {
  if (value === undefined || value === null || value === '' || value === false) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((v) => typeof v === 'string' && v.trim() !== '')) {
    throw new ConfigError(`${key} in ${file} must be a returner name or a list of names`);
  }
  return [...new Set(list.map((v: string) => v.trim()))];
}

function globs(file: string, key: string, value: unknown): string[] {
  if (value === undefined || value === null || value === '') return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((v) => typeof v === 'string')) {
    throw new ConfigError(`${key} in ${file} must be a list of tag globs`);
  }
  return list;
}

/** A path key: a string, a relative one taken from the home (Salt's `root_dir`); unset: `fallback` under the home. */
function pathKey(mapping: ConfigMapping, key: string, file: string, home: string, fallback: string): string {
  const v = mapping[key];
  if (v === undefined || v === null || v === '') return path.resolve(home, fallback);
  if (typeof v !== 'string') throw new ConfigError(`${key} in ${file} must be a path`);
  return path.resolve(home, v);
}

/** The returner keys of a master configuration mapping; throws ConfigError naming the key. */
export function parseMasterReturnersConfig(mapping: ConfigMapping, file: string, home = path.dirname(file)): MasterReturnersConfig {
  const jobCache = names(file, 'master_job_cache', mapping.master_job_cache);
  if (jobCache.length > 1) throw new ConfigError(`master_job_cache in ${file} must be one returner name`);
  let id: string | undefined;
  if (mapping.id !== undefined && mapping.id !== null && mapping.id !== '') {
    if (typeof mapping.id !== 'string' && typeof mapping.id !== 'number') throw new ConfigError(`id in ${file} must be a string`);
    id = String(mapping.id);
  }
  const extensionModules = pathKey(mapping, 'extension_modules', file, home, 'extmods');
  const cachedir = pathKey(mapping, 'cachedir', file, home, path.join('cache', 'master'));
  return {
    file,
    extensionModules,
    cachedir,
    ...(jobCache[0] === undefined ? {} : { masterJobCache: jobCache[0] }),
    eventReturn: names(file, 'event_return', mapping.event_return),
    eventReturnWhitelist: globs(file, 'event_return_whitelist', mapping.event_return_whitelist),
    eventReturnBlacklist: globs(file, 'event_return_blacklist', mapping.event_return_blacklist),
    ...(id === undefined ? {} : { id }),
    mapping: { ...mapping, cachedir, extension_modules: extensionModules },
  };
}

/** Reads the master configuration file of `home` (a missing file configures nothing). */
export function loadMasterReturnersConfig(home: string, env: NodeJS.ProcessEnv = process.env): MasterReturnersConfig {
  const file = configFilePath('master', home, env);
  return parseMasterReturnersConfig(readConfigFile(file), file, home);
}
