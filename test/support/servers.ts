// Helpers for integration/e2e test files: the servers started once by test/global-setup.ts.

import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import type {} from '../global-setup.js'; // ProvidedContext augmentation (natsUrl, databaseUrl)
import { createDatabase } from '../../packages/cli/src/embedded/postgres.js';

/** URL of the run's shared nats-server (JetStream enabled). */
export function natsUrl(): string {
  return inject('natsUrl');
}

/** URL of the shared PostgreSQL's `postgres` database, as superuser. */
export function adminDatabaseUrl(): string {
  return inject('databaseUrl');
}

let counter = 0;

/** A name unique across the run's files and workers, safe as a PostgreSQL identifier (≤ 63
 *  bytes) and as a NATS stream / consumer / KV bucket name: [a-z0-9_], starts with a letter. */
export function uniqueName(prefix: string): string {
  const suffix = [process.pid.toString(36), Date.now().toString(36), (counter++).toString(36), randomBytes(3).toString('hex')].join('_');
  let head = prefix.toLowerCase().replace(/[^a-z0-9_]+/g, '_');
  if (!/^[a-z]/.test(head)) head = 't' + head;
  head = head.slice(0, 63 - suffix.length - 1);
  return `${head}_${suffix}`;
}

/** Creates an empty database with a unique name and returns its URL. */
export async function freshDatabase(prefix = 'test'): Promise<string> {
  return createDatabase(adminDatabaseUrl(), uniqueName(prefix));
}
