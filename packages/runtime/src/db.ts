import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import * as schema from '@jobledger/core/schema';

export type Db = NodePgDatabase<typeof schema>;

export interface Database {
  pool: pg.Pool;
  db: Db;
  close(): Promise<void>;
}

/**
 * A pool on the database at `url`. With `schema`, every connection's `search_path` is that
 * schema alone (set at connection start), so unqualified table names are its tables.
 */
export function openDatabase(url: string, opts: { max?: number; schema?: string } = {}): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 5,
    ...(opts.schema === undefined ? {} : { options: `-c search_path=${quoteIdent(checkSchemaName(opts.schema))}` }),
  });
  pool.on('error', () => {
    /* an idle client lost its connection; the next query reconnects */
  });
  // A checked-out client that loses its connection fails its query; its 'error' event must not
  // become an uncaught exception.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return { pool, db: drizzle(pool, { schema }), close: () => pool.end() };
}

/** The folder of SQL migrations shipped with @jobledger/core. */
export function migrationsFolder(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('@jobledger/core/package.json')), 'migrations');
}

// ---------------------------------------------------------------------------------------------
// Errors a missing, unreachable or unmigrated database gives: one line naming what to do, for
// the CLI to print as it is and for services to log.

/** The database cannot be used yet. Base class of the errors below. */
export class DatabaseNotReadyError extends Error {
  override readonly name: string = 'DatabaseNotReadyError';
  readonly retryable: boolean = true;
}

/** PostgreSQL cannot be reached (refused, unknown host, timed out, authentication failed…). */
export class DatabaseUnreachableError extends DatabaseNotReadyError {
  override readonly name = 'DatabaseUnreachableError';
  override readonly retryable: boolean;
  constructor(address: string, reason: string, opts: { cause?: unknown; retryable?: boolean } = {}) {
    super(`cannot reach PostgreSQL at ${address}: ${reason}`, { cause: opts.cause });
    this.retryable = opts.retryable ?? true;
  }
}

/** The server answers but the database named in the URL does not exist. */
export class DatabaseMissingError extends DatabaseNotReadyError {
  override readonly name = 'DatabaseMissingError';
  override readonly retryable = false;
}

/** The database exists but the jobledger tables are missing or older than this release. */
export class DatabaseNotMigratedError extends DatabaseNotReadyError {
  override readonly name = 'DatabaseNotMigratedError';
  override readonly retryable = false;
}

/** Where a PostgreSQL URL points, for messages: never the password. */
export interface DatabaseAddress {
  host: string;
  port: string;
  /** `host:port` (the host is a socket directory for a Unix socket). */
  address: string;
  database: string;
  /** `database "<name>" at <host:port>`. */
  display: string;
}

export function databaseAddress(url: string, env: NodeJS.ProcessEnv = process.env): DatabaseAddress {
  let host = '';
  let port = '';
  let database = '';
  let user = '';
  // Not `new URL`: it refuses what pg accepts, e.g. `postgres://u@/db?host=/var/run/postgresql`.
  const m = /^[a-z]+:\/\/(?:([^@/]*)@)?(\[[^\]]*\]|[^/?:]*)(?::(\d*))?(?:\/([^?]*))?(?:\?(.*))?$/i.exec(url);
  if (m) {
    const decode = (s: string | undefined) => {
      try {
        return decodeURIComponent(s ?? '');
      } catch {
        return s ?? '';
      }
    };
    const params = new URLSearchParams(m[5] ?? '');
    user = decode(m[1]?.split(':')[0]);
    host = decode(m[2]) || params.get('host') || '';
    port = m[3] || params.get('port') || '';
    database = decode(m[4]) || params.get('db') || params.get('dbname') || '';
  }
  host ||= env.PGHOST || 'localhost';
  port ||= env.PGPORT || '5432';
  database ||= env.PGDATABASE || user || env.PGUSER || 'postgres';
  const address = `${host}:${port}`;
  return { host, port, address, database, display: `database ${JSON.stringify(database)} at ${address}` };
}

/** Socket error codes, as words. */
const SOCKET_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'unknown host (name resolution failed)',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset',
  ENOENT: 'no server socket',
  EACCES: 'permission denied',
};

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function errorMessage(err: unknown): string {
  if (err instanceof AggregateError && err.message === '') return errorMessage(err.errors[0]);
  return err instanceof Error ? err.message : String(err);
}

/** SQLSTATEs meaning the server cannot serve us now: starting up, shutting down, too many clients. */
const UNAVAILABLE = /^(08|57P0|53300)/;
/** SQLSTATEs of a refused login. */
const LOGIN_REFUSED = /^(28)/;

function connectError(err: unknown, url: string): DatabaseNotReadyError {
  const where = databaseAddress(url);
  const code = errorCode(err);
  if (code === '3D000') {
    return new DatabaseMissingError(
      `the ${where.display} does not exist: create it (\`createdb -h ${where.host} -p ${where.port} ${where.database}\`), then run \`npx jobledger db migrate\``,
      { cause: err },
    );
  }
  const reason = (code && SOCKET_REASONS[code]) || errorMessage(err) || code || 'unknown error';
  return new DatabaseUnreachableError(where.address, reason, { cause: err, retryable: !(code && LOGIN_REFUSED.test(code)) });
}

function notMigrated(url: string, cause?: unknown): DatabaseNotMigratedError {
  return new DatabaseNotMigratedError(
    `the jobledger tables are missing in ${databaseAddress(url).display}: run \`npx jobledger db migrate\` (or \`npx jobledger up\`)`,
    { cause },
  );
}

/**
 * The error to report for `err`, raised while using the database at `url`: a connection
 * failure becomes DatabaseUnreachableError (or DatabaseMissingError), a missing table
 * DatabaseNotMigratedError; anything else is returned as it is.
 */
export function databaseError(err: unknown, url: string): unknown {
  if (err instanceof DatabaseNotReadyError) return err;
  const code = errorCode(err);
  if (code === '42P01' || code === '3F000') return notMigrated(url, err);
  if (code === '3D000' || (code && (SOCKET_REASONS[code] || UNAVAILABLE.test(code) || LOGIN_REFUSED.test(code)))) {
    return connectError(err, url);
  }
  const message = errorMessage(err);
  // pg's own texts for a connection lost or never made.
  if (/^Connection terminated|timeout expired|connection timeout/i.test(message)) return connectError(err, url);
  return err;
}

interface JournalEntry {
  when: number;
  tag: string;
}

/** The migrations shipped with this release, oldest first. */
export function shippedMigrations(): JournalEntry[] {
  const journal = JSON.parse(readFileSync(path.join(migrationsFolder(), 'meta', '_journal.json'), 'utf8')) as { entries: JournalEntry[] };
  return journal.entries;
}

/** Drizzle's journal of applied migrations, as the migrator reads it. */
const APPLIED = 'SELECT coalesce(max(created_at), 0)::text AS last FROM drizzle.__drizzle_migrations';

/** How many shipped migrations are not applied yet to the connected database. */
async function pendingCount(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ journal: boolean }>("SELECT to_regclass('drizzle.__drizzle_migrations') IS NOT NULL AS journal");
  const shipped = shippedMigrations();
  if (!rows[0]?.journal) return shipped.length;
  const last = Number((await client.query<{ last: string }>(APPLIED)).rows[0]?.last ?? 0);
  return shipped.filter((m) => m.when > last).length;
}

async function connect(url: string, timeoutMs: number): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => {
    /* reported by the query that fails */
  });
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw connectError(err, url);
  }
  return client;
}

/**
 * Checks that the database at `url` can be reached and holds every shipped migration; throws
 * DatabaseUnreachableError, DatabaseMissingError or DatabaseNotMigratedError otherwise.
 */
export async function verifyDatabase(url: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  const client = await connect(url, opts.timeoutMs ?? 5_000);
  try {
    const pending = await pendingCount(client);
    if (pending === shippedMigrations().length) throw notMigrated(url);
    if (pending > 0) {
      throw new DatabaseNotMigratedError(
        `the jobledger tables in ${databaseAddress(url).display} are out of date (${pending} migration${pending === 1 ? '' : 's'} to apply): run \`npx jobledger db migrate\` (or \`npx jobledger up\`)`,
      );
    }
  } catch (err) {
    throw databaseError(err, url);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Arbitrary key of the advisory lock that serialises migrations across processes. */
const MIGRATION_LOCK = 7310221;

/** A schema name jobledger creates or uses: lower-case letters, digits and `_`, at most 63. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** A schema that cannot receive the jobledger tables (bad name, or it already holds something). */
export class SchemaError extends Error {
  override readonly name = 'SchemaError';
  readonly retryable = false;
}

export function checkSchemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema) || schema.startsWith('pg_')) {
    throw new SchemaError(
      `schema name ${JSON.stringify(schema)} must be 1-63 of a-z 0-9 _, start with a letter or _, and not start with pg_`,
    );
  }
  return schema;
}

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/**
 * The statements of every shipped migration, in order, for a fresh schema `schema`: drizzle-kit
 * qualifies some names with `"public".` (the sequence of salt_events); those qualifiers become
 * `"<schema>".`. Anything else naming the public schema is refused rather than run against
 * the live tables.
 */
export function migrationStatements(schema: string): string[] {
  checkSchemaName(schema);
  const out: string[] = [];
  for (const m of shippedMigrations()) {
    const text = readFileSync(path.join(migrationsFolder(), `${m.tag}.sql`), 'utf8');
    for (const raw of text.split('--> statement-breakpoint')) {
      const statement = raw.trim();
      if (statement === '') continue;
      const rewritten = statement.replace(/"public"\s*\.\s*"/g, `${quoteIdent(schema)}."`);
      if (/("public"|\bpublic)\s*\./i.test(rewritten)) {
        throw new SchemaError(
          `migration ${m.tag} names the public schema in a way that cannot be moved to ${schema}: ${statement.slice(0, 200)}`,
        );
      }
      out.push(rewritten);
    }
  }
  return out;
}

/**
 * Creates every jobledger table in the schema `schema` (created if missing), which must hold
 * no table, view or sequence yet: all shipped migrations in one transaction with `search_path`
 * set to that schema alone. drizzle's journal is not touched (it describes the database's
 * `public` tables; a schema made here always has every shipped migration).
 */
async function createTablesInSchema(client: pg.Client, schema: string): Promise<number> {
  const statements = migrationStatements(schema);
  await client.query('BEGIN');
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`,
      [schema],
    );
    if ((rows[0]?.n ?? 0) > 0) {
      throw new SchemaError(
        `schema ${schema} already holds ${rows[0]!.n} tables, indexes or sequences: choose another name or drop it first`,
      );
    }
    await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
    for (const s of statements) await client.query(s);
    await client.query('COMMIT');
    return shippedMigrations().length;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * Applies every pending migration (drizzle's journal in `drizzle.__drizzle_migrations`),
 * under an advisory lock so processes starting together do not race. Resolves to the number
 * of migrations applied; an unreachable or missing database throws DatabaseUnreachableError or
 * DatabaseMissingError. With `schema` (other than `public`), creates the tables in that fresh
 * schema instead (see createTablesInSchema); a schema that already holds something throws
 * SchemaError.
 */
export async function migrateDatabase(url: string, opts: { timeoutMs?: number; schema?: string } = {}): Promise<number> {
  const client = await connect(url, opts.timeoutMs ?? 10_000);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    if (opts.schema !== undefined && opts.schema !== 'public') {
      const created = await createTablesInSchema(client, checkSchemaName(opts.schema));
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
      return created;
    }
    const pending = await pendingCount(client);
    if (pending > 0) await migrate(drizzle(client, { schema }), { migrationsFolder: migrationsFolder() });
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    return pending;
  } catch (err) {
    if (err instanceof SchemaError) throw err;
    throw databaseError(err, url);
  } finally {
    await client.end().catch(() => undefined);
  }
}
