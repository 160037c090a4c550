import { readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import {
  AclConfigError,
  Limits,
  nestsDeeperThan,
  yamlErrorText,
  EMPTY_PUBLISHER_ACL,
  parsePublisherAcl,
  parseExternalAuth,
  type ExternalAuth,
  type Nodegroups,
  type PublisherAcl,
} from '@jobledger/core';
import type { Logger } from '@jobledger/runtime';

/** What the dispatcher takes from the master configuration file (Salt's `/etc/salt/master`). */
export interface MasterConfig {
  /** `nodegroups:` — group name → compound string or list of words. */
  nodegroups: Nodegroups;
  /** `publisher_acl`, `publisher_acl_blacklist`, `sudo_acl`. */
  acl: PublisherAcl;
  /** `external_auth`: the ACL of the HTTP API's users. */
  externalAuth: ExternalAuth;
  /** Salt's `permissive_acl`: the `'*'` rules apply to every eauth user, not only to unmatched ones. */
  permissiveAcl: boolean;
  /**
   * The file could not be used: the ACL is closed (only root and the master's user may publish)
   * until it is fixed, so a typo never opens what the file meant to restrict.
   */
  unusable?: string;
}

export class MasterConfigError extends Error {
  override readonly name = 'MasterConfigError';
  readonly retryable = false;
}

/** Parses the file's text (YAML, so JSON too); an empty file is an empty configuration. */
export function parseMasterConfig(text: string, file: string): MasterConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: Limits.yamlAliases });
  } catch (cause) {
    throw new MasterConfigError(`${file} is not valid YAML: ${yamlErrorText(cause)}`, { cause });
  }
  if (nestsDeeperThan(doc, Limits.depth)) throw new MasterConfigError(`${file} is nested more than ${Limits.depth} levels deep`);
  if (doc === null || doc === undefined) return emptyMasterConfig();
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new MasterConfigError(`${file} must hold a mapping`);
  let acl: PublisherAcl;
  let externalAuth: ExternalAuth;
  try {
    acl = parsePublisherAcl(doc as Record<string, unknown>);
    externalAuth = parseExternalAuth(doc as Record<string, unknown>);
  } catch (cause) {
    if (cause instanceof AclConfigError) throw new MasterConfigError(`${file}: ${cause.message}`, { cause });
    throw cause;
  }
  const permissive = (doc as Record<string, unknown>).permissive_acl;
  if (permissive !== undefined && permissive !== null && typeof permissive !== 'boolean') {
    throw new MasterConfigError(`${file}: permissive_acl must be True or False`);
  }
  return {
    nodegroups: parseNodegroups((doc as Record<string, unknown>).nodegroups, file),
    acl,
    externalAuth,
    permissiveAcl: permissive === true,
  };
}

/** No file, or an empty one. */
export function emptyMasterConfig(): MasterConfig {
  return { nodegroups: {}, acl: EMPTY_PUBLISHER_ACL, externalAuth: {}, permissiveAcl: false };
}

function parseNodegroups(groups: unknown, file: string): Nodegroups {
  if (groups === undefined || groups === null) return {};
  if (typeof groups !== 'object') throw new MasterConfigError(`nodegroups in ${file} must be a mapping`);
  // Salt also accepts a list of one-key mappings (`- group1: …`).
  if (Array.isArray(groups)) {
    const merged: Record<string, unknown> = {};
    for (const item of groups) {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        throw new MasterConfigError(`nodegroups in ${file} must be a mapping`);
      }
      Object.assign(merged, item);
    }
    return merged;
  }
  return groups as Record<string, unknown>;
}

/**
 * The master configuration file, read when first needed and again whenever it changes (size or
 * modification time), so nodegroups can be edited without restarting the dispatcher. A missing
 * file is an empty configuration; a file that does not parse keeps the last good one (and logs).
 */
export class MasterConfigFile {
  private cached: MasterConfig = emptyMasterConfig();
  private stamp = '';

  constructor(
    readonly file: string,
    private readonly log?: Logger,
  ) {}

  current(): MasterConfig {
    let stamp: string;
    try {
      const st = statSync(this.file);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      stamp = 'missing';
    }
    if (stamp === this.stamp) return this.cached;
    if (stamp === 'missing') {
      this.cached = emptyMasterConfig();
    } else {
      try {
        this.cached = parseMasterConfig(readFileSync(this.file, 'utf8'), this.file);
        this.log?.info({ file: this.file, nodegroups: Object.keys(this.cached.nodegroups).length }, 'master configuration read');
      } catch (err) {
        this.log?.error(
          { err, file: this.file },
          'master configuration not usable; keeping the previous nodegroups, publishing only as root',
        );
        this.cached = { ...this.cached, unusable: (err as Error).message };
      }
    }
    this.stamp = stamp;
    return this.cached;
  }
}
