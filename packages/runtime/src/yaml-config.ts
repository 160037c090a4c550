import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Limits, nestsDeeperThan, yamlErrorText } from '@jobledger/core';
import { ConfigError, jobledgerHome, masterId } from './config.js';

/**
 * Salt-style configuration files: `$JOBLEDGER_HOME/master.yaml` (dispatcher and projector, Salt's
 * `/etc/salt/master`) and `$JOBLEDGER_HOME/minion.yaml` (agents, Salt's `/etc/salt/minion`).
 * YAML (so JSON too); a missing or empty file is an empty mapping.
 */
export type ConfigMapping = Record<string, unknown>;

/** The file of a role: `JOBLEDGER_MASTER_CONFIG` / `JOBLEDGER_MINION_CONFIG`, else under the home. */
export function configFilePath(role: 'master' | 'minion', home: string, env: NodeJS.ProcessEnv = process.env): string {
  const override = role === 'master' ? env.JOBLEDGER_MASTER_CONFIG : env.JOBLEDGER_MINION_CONFIG;
  return path.resolve(override || path.join(home, `${role}.yaml`));
}

/** Parses a configuration text; throws ConfigError naming the file on anything but a mapping. */
export function parseConfigMapping(text: string, file: string): ConfigMapping {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: Limits.yamlAliases });
  } catch (cause) {
    throw new ConfigError(`${file} is not valid YAML: ${yamlErrorText(cause)}`, { cause });
  }
  if (nestsDeeperThan(doc, Limits.depth)) throw new ConfigError(`${file} is nested more than ${Limits.depth} levels deep`);
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`${file} must hold a mapping`);
  return doc as ConfigMapping;
}

/** Reads a configuration file; a missing file is `{}`. */
export function readConfigFile(file: string): ConfigMapping {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`${file} cannot be read: ${(cause as Error).message}`, { cause });
  }
  return parseConfigMapping(text, file);
}

/**
 * Salt's master id as the dispatcher and the projector see it: `JOBLEDGER_MASTER_ID`, else
 * `id:` of master.yaml, else `<hostname>_master`. A master.yaml that cannot be read counts as
 * having no `id` (whoever reads its other keys reports it).
 */
export function configuredMasterId(env: NodeJS.ProcessEnv = process.env): string {
  let id: unknown;
  try {
    id = readConfigFile(configFilePath('master', jobledgerHome(env), env)).id;
  } catch {
    id = undefined;
  }
  return masterId(env, id);
}
