import { getReturnerOptions } from '@jobledger/core';
import { ConfigError } from '@jobledger/runtime';
import { parse } from 'pg-connection-string';

/**
 * `master_job_cache: pgjsonb` (or `event_return: pgjsonb`) aimed at jobledger's own database
 * would write Salt's tables a second time beside the projector, and its `clean_old_jobs` would
 * delete the projector's rows behind its back (which `audit verify` then reports). jobledger's
 * tables already are Salt's pgjsonb job cache, so such a configuration is refused at start.
 */
const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);
const sameHost = (a: string, b: string) => (LOOPBACK.has(a) && LOOPBACK.has(b)) || a.toLowerCase() === b.toLowerCase();

export function refusePgjsonbOnOwnDatabase(
  feeds: readonly { role: string; name: string }[],
  mapping: Readonly<Record<string, unknown>>,
  file: string,
  databaseUrl: string,
): void {
  const own = parse(databaseUrl);
  const ownHost = own.host || 'localhost';
  const ownPort = Number(own.port || 5432);
  for (const { role, name } of feeds) {
    if (name !== 'pgjsonb') continue;
    const o = getReturnerOptions(
      'returner.pgjsonb',
      ['host', 'port', 'db'],
      { config: mapping },
      { host: 'localhost', port: 5432, db: 'salt' },
    );
    if (sameHost(String(o.host), ownHost) && Number(o.port) === ownPort && String(o.db) === own.database) {
      throw new ConfigError(
        `${role}: pgjsonb points at jobledger's own database (${own.database} at ${ownHost}:${ownPort}), whose tables already are ` +
          `Salt's pgjsonb job cache; point returner.pgjsonb.* at another database or remove ${role} (${file})`,
      );
    }
  }
}
