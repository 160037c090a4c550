import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { schema } from '@jobledger/core';

export type Db = NodePgDatabase<typeof schema>;

export interface Database {
  pool: pg.Pool;
  db: Db;
  close(): Promise<void>;
}

export function openDatabase(url: string, opts: { max?: number } = {}): Database {
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 5 });
  pool.on('error', () => {
    /* an idle client lost its connection; the next query reconnects */
  });
  return { pool, db: drizzle(pool, { schema }), close: () => pool.end() };
}

/** The folder of SQL migrations shipped with @jobledger/core. */
export function migrationsFolder(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('@jobledger/core/package.json')), 'migrations');
}

export class DatabaseNotReadyError extends Error {
  override readonly name = 'DatabaseNotReadyError';
  readonly retryable = true;
}

/** Arbitrary key of the advisory lock that serialises migrations across processes. */
const MIGRATION_LOCK = 7310221;

/**
 * Applies every pending migration (drizzle's journal in `drizzle.__drizzle_migrations`),
 * under an advisory lock so processes starting together do not race.
 */
export async function migrateDatabase(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await migrate(drizzle(client, { schema }), { migrationsFolder: migrationsFolder() });
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  } finally {
    await client.end();
  }
}
