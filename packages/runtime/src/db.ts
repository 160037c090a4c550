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

/** Applies every pending migration (drizzle's journal in `drizzle.__drizzle_migrations`). */
export async function migrateDatabase(url: string): Promise<void> {
  const d = openDatabase(url, { max: 1 });
  try {
    await migrate(d.db, { migrationsFolder: migrationsFolder() });
  } finally {
    await d.close();
  }
}
