import { createHash } from 'node:crypto';
import path from 'node:path';
import { encodeAgentId } from '@jobledger/core';
import {
  ConfigError,
  configFilePath,
  intEnv,
  loadCommonConfig,
  readConfigFile,
  type CommonConfig,
  type ConfigMapping,
} from '@jobledger/runtime';

export interface AgentConfig extends CommonConfig {
  /** Agent ids (Salt minion ids) hosted by this process, in the order given. */
  ids: string[];
  /** Name of the process's group of ids: its durable consumer and the `group` of its presence. */
  group: string;
  /** Root of the per-id cachedirs: `<cachedirRoot>/<encodeAgentId(id)>/proc/<jid>`. */
  cachedirRoot: string;
  /** Jobs running at once, over all hosted ids. */
  maxInflight: number;
  /** On catch-up, job publications older than this are not run. */
  catchupSeconds: number;
  /** On stop, how long running jobs may take before they are cancelled. */
  stopGraceMs: number;
  /**
   * How long a job running inside the agent goes without a proc file (0: written before it
   * starts, as Salt's minion does). A shell function's file is always written at once.
   */
  procFileAfterMs: number;
  readyFile?: string;
  /** Salt's minion configuration file (`$JOBLEDGER_HOME/minion.yaml`, or `JOBLEDGER_MINION_CONFIG`). */
  minionConfigFile: string;
  /** Its content, with `cachedir` and `extension_modules` resolved: what the returners read their options from. */
  minion: ConfigMapping;
  /** Salt's minion `cachedir` (default `$JOBLEDGER_HOME/cache`): `local_cache` writes `<cachedir>/jobs`. */
  cachedir: string;
  /** Salt's `extension_modules` (default `$JOBLEDGER_HOME/extmods`): plugins in `modules/` and `returners/`. */
  extensionModules: string;
}

/** Valid as a JetStream durable name (no `.`, `*`, `>`, whitespace, path separators). */
const CONSUMER_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** `agent-` + the first 16 hex digits of sha256(sorted ids joined by `\n`). */
export function defaultGroupName(ids: readonly string[]): string {
  const digest = createHash('sha256')
    .update([...ids].sort().join('\n'))
    .digest('hex');
  return `agent-${digest.slice(0, 16)}`;
}

/** The cachedir of one hosted id; its proc files live in `<cachedir>/proc/`. */
export function agentCachedir(root: string, id: string): string {
  return path.join(root, encodeAgentId(id));
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const n = intEnv(env, name, fallback);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${name} must be a positive integer, got '${env[name]}'`);
  return n;
}

function nonNegative(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const n = intEnv(env, name, fallback);
  if (n < 0) throw new ConfigError(`${name} must not be negative, got '${env[name]}'`);
  return n;
}

/** A path key of the minion configuration: a string, relative paths taken from the home (Salt's `root_dir`). */
function pathKey(minion: ConfigMapping, key: string, file: string, home: string, fallback: string): string {
  const v = minion[key];
  if (v === undefined || v === null || v === '') return path.resolve(home, fallback);
  if (typeof v !== 'string') throw new ConfigError(`${file}: ${key} must be a path, got ${JSON.stringify(v)}`);
  return path.resolve(home, v);
}

/** Reads the minion configuration file; throws ConfigError naming the file on a bad one. */
export function loadMinionConfig(
  home: string,
  env: NodeJS.ProcessEnv = process.env,
): Pick<AgentConfig, 'minionConfigFile' | 'minion' | 'cachedir' | 'extensionModules'> {
  const file = configFilePath('minion', home, env);
  const raw = readConfigFile(file);
  const cachedir = pathKey(raw, 'cachedir', file, home, 'cache');
  const extensionModules = pathKey(raw, 'extension_modules', file, home, 'extmods');
  return { minionConfigFile: file, minion: { ...raw, cachedir, extension_modules: extensionModules }, cachedir, extensionModules };
}

/** Reads the agent's settings from the environment; throws ConfigError naming the bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const common = loadCommonConfig(env);

  const rawIds = env.JOBLEDGER_AGENT_IDS;
  if (rawIds === undefined || rawIds.trim() === '') throw new ConfigError('JOBLEDGER_AGENT_IDS is not set');
  const ids = rawIds.split(',').map((s) => s.trim());
  if (ids.some((id) => id === '')) throw new ConfigError(`JOBLEDGER_AGENT_IDS has an empty id: '${rawIds}'`);
  for (const id of ids) {
    // Salt's `valid_id`: an id names directories (the job cache's `<jid dir>/<id>`).
    if (id === '.' || id === '..' || /[/\\\0]/.test(id)) {
      throw new ConfigError(`JOBLEDGER_AGENT_IDS has an invalid id '${id}': an id must not be '.', '..' or contain '/', '\\' or NUL`);
    }
  }
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) throw new ConfigError(`JOBLEDGER_AGENT_IDS names '${id}' twice`);
    seen.add(id);
  }

  const group = env.JOBLEDGER_AGENT_GROUP || defaultGroupName(ids);
  if (!CONSUMER_NAME.test(group)) {
    throw new ConfigError(`JOBLEDGER_AGENT_GROUP must be 1-64 characters of A-Z a-z 0-9 _ -, got '${group}'`);
  }

  return {
    ...common,
    ids,
    group,
    cachedirRoot: path.resolve(env.JOBLEDGER_AGENT_CACHEDIR || path.join(common.home, 'agents')),
    maxInflight: positiveInt(env, 'JOBLEDGER_AGENT_MAX_INFLIGHT', 64),
    catchupSeconds: nonNegative(env, 'JOBLEDGER_CATCHUP_SECONDS', 3600),
    stopGraceMs: nonNegative(env, 'JOBLEDGER_AGENT_STOP_GRACE_MS', 5000),
    procFileAfterMs: nonNegative(env, 'JOBLEDGER_AGENT_PROC_FILE_AFTER_MS', 500),
    readyFile: env.JOBLEDGER_READY_FILE || undefined,
    ...loadMinionConfig(common.home, env),
  };
}
