/**
 * Salt's `pgjsonb` returner against any PostgreSQL: options `returner.pgjsonb.<opt>` (or a
 * `returner.pgjsonb:` mapping) `host` (localhost), `user` (salt), `pass` (salt), `db` (salt),
 * `port` (5432), `sslmode`, `sslcert`, `sslkey`, `sslrootcert`, `sslcrl`. `host` may be a Unix
 * socket directory or an IPv6 address, as with libpq.
 *
 * Differences from Salt, all deliberate:
 *  - Salt leaves creating the tables to the user; this returner creates Salt's schema (the DDL
 *    of the module's documentation, with IF NOT EXISTS) on first use of each database.
 *  - `returner` and `event_return` skip a row identical to one already stored (same jid, id
 *    and full_ret / same tag and data), so a feed that delivers a return twice stores it once.
 *  - `save_load` keeps the first load of a jid (ON CONFLICT DO NOTHING) instead of Salt's
 *    upsert, which replaced the publish load with each minion's return load.
 *  - `get_fun` works on PostgreSQL (Salt's query uses MySQL backticks); `get_jids_filter` exists.
 *  - Failures are raised as `ReturnerError`, retryable when the server is unreachable, not
 *    serving yet, or times out (connect 10 s, query 30 s, also the session's statement_timeout).
 *  - `event_return` takes one advisory lock per batch, not per event.
 *  - Without `sslmode`, or with `allow` / `prefer`, the connection is not encrypted
 *    (node-postgres cannot fall back from SSL to plain as libpq does); see `pgjsonbSslConfig`.
 */
import { readFile } from 'node:fs/promises';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import {
  formatJidInstance,
  formatJidInstanceExt,
  keepJobsSeconds,
  ReturnerError,
  type ReturnLoad,
  type Returner,
  type ReturnerContext,
  type ReturnerEvent,
  type ReturnerModule,
} from '@jobledger/core';
import { errorCode, errorText, optionText, returnerOptions } from './support.js';

const NAME = 'pgjsonb';
export const PGJSONB_PREFIX = 'returner.pgjsonb';
const DEFAULTS = { host: 'localhost', user: 'salt', pass: 'salt', db: 'salt', port: 5432 };
const ATTRS = ['host', 'user', 'pass', 'db', 'port', 'sslmode', 'sslcert', 'sslkey', 'sslrootcert', 'sslcrl'];
export const UNAVAILABLE_TEXT = 'Could not store return with pgjsonb returner. PostgreSQL server unavailable.';

/** Salt's pgjsonb schema, as its module documentation gives it, made idempotent. */
export const PGJSONB_SCHEMA = `
CREATE TABLE IF NOT EXISTS jids (
   jid  varchar(255) NOT NULL PRIMARY KEY,
   load jsonb        NOT NULL);
CREATE INDEX IF NOT EXISTS idx_jids_jsonb ON jids USING gin (load) WITH (fastupdate=on);

CREATE TABLE IF NOT EXISTS salt_returns (
  fun        varchar(50)  NOT NULL,
  jid        varchar(255) NOT NULL,
  return     jsonb        NOT NULL,
  id         varchar(255) NOT NULL,
  success    varchar(10)  NOT NULL,
  full_ret   jsonb        NOT NULL,
  alter_time TIMESTAMP WITH TIME ZONE DEFAULT NOW());
CREATE INDEX IF NOT EXISTS idx_salt_returns_id  ON salt_returns (id);
CREATE INDEX IF NOT EXISTS idx_salt_returns_jid ON salt_returns (jid);
CREATE INDEX IF NOT EXISTS idx_salt_returns_fun ON salt_returns (fun);
CREATE INDEX IF NOT EXISTS idx_salt_returns_return   ON salt_returns USING gin (return)   WITH (fastupdate=on);
CREATE INDEX IF NOT EXISTS idx_salt_returns_full_ret ON salt_returns USING gin (full_ret) WITH (fastupdate=on);

CREATE SEQUENCE IF NOT EXISTS seq_salt_events_id;
CREATE TABLE IF NOT EXISTS salt_events (
  id         BIGINT NOT NULL UNIQUE DEFAULT nextval('seq_salt_events_id'),
  tag        varchar(255) NOT NULL,
  data       jsonb        NOT NULL,
  alter_time TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  master_id  varchar(255) NOT NULL);
CREATE INDEX IF NOT EXISTS idx_salt_events_tag  ON salt_events (tag);
CREATE INDEX IF NOT EXISTS idx_salt_events_data ON salt_events USING gin (data) WITH (fastupdate=on);
`;

/** Advisory lock keys (first half) of this returner's critical sections. */
const LOCK_SCHEMA = 0x7067_6a73; // "pgjs"
const LOCK_RETURN = 0x7067_7274;
const LOCK_EVENT = 0x7067_6576;

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** SQLSTATE classes that depend only on the data written: the same write fails every time. */
export function isDataErrorCode(code: string): boolean {
  return /^(21|22|23|54)/.test(code);
}

/** True when the error says the server cannot be reached or is not serving (yet). */
export function isUnavailable(err: unknown): boolean {
  const code = errorCode(err);
  if (NETWORK_CODES.has(code)) return true;
  // connection_exception, cannot_connect_now / admin_shutdown / crash_shutdown,
  // insufficient_resources, query_canceled (statement_timeout)
  if (/^(08|57P0|53)/.test(code) || code === '57014') return true;
  const text = errorText(err);
  return /Connection terminated|timeout expired|timeout exceeded when trying to connect|Query read timeout|connect ETIMEDOUT|Client has encountered a connection error/i.test(
    text,
  );
}

/** pgjsonb's connection options after defaults, as plain values (the key of a pool). */
export interface PgjsonbConnectionOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  sslmode?: string;
  sslcert?: string;
  sslkey?: string;
  sslrootcert?: string;
  sslcrl?: string;
}

const SSL_MODES = new Set(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']);

/** Checks and normalises the looked-up options; a bad one is a non-retryable error. */
export function pgjsonbConnectionOptions(o: Record<string, unknown>): PgjsonbConnectionOptions {
  const port = Number(o['port']);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new ReturnerError(NAME, `option port must be a TCP port, got ${JSON.stringify(o['port'])}`, { retryable: false });
  }
  const str = (k: string) => (o[k] === undefined || o[k] === null || o[k] === '' ? undefined : optionText(o[k]));
  const out: PgjsonbConnectionOptions = {
    host: str('host') ?? DEFAULTS.host,
    port,
    user: str('user') ?? '',
    password: str('pass') ?? '',
    database: str('db') ?? '',
  };
  const sslmode = str('sslmode');
  if (sslmode !== undefined) {
    if (!SSL_MODES.has(sslmode)) {
      throw new ReturnerError(NAME, `option sslmode must be one of ${[...SSL_MODES].join(', ')}, got ${JSON.stringify(sslmode)}`, {
        retryable: false,
      });
    }
    out.sslmode = sslmode;
  }
  for (const k of ['sslcert', 'sslkey', 'sslrootcert', 'sslcrl'] as const) {
    const v = str(k);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

async function readSslFile(option: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    // A certificate file missing or unreadable is for an operator to put right: the return waits.
    throw new ReturnerError(NAME, `could not read the ${option} file ${file}: ${errorText(err)}`, { retryable: true, cause: err });
  }
}

/**
 * libpq's SSL parameters as node-postgres's `ssl` option: `disable` (and `allow`, `prefer` or
 * no sslmode, which node-postgres cannot fall back from) connect without SSL; `require`
 * encrypts without checking the server's certificate, unless `sslrootcert` is given (then, as
 * libpq, it acts as `verify-ca`); `verify-ca` checks the certificate against `sslrootcert`
 * (or the system's CAs) but not the host name; `verify-full` checks both. `sslcert` / `sslkey`
 * are the client certificate and key, `sslcrl` a revocation list (PEM files, read here).
 */
export async function pgjsonbSslConfig(o: PgjsonbConnectionOptions): Promise<false | ConnectionOptions> {
  const mode = o.sslmode ?? 'prefer';
  if (mode === 'disable' || mode === 'allow' || mode === 'prefer') return false;
  const ssl: ConnectionOptions = {};
  if (o.sslcert !== undefined) ssl.cert = await readSslFile('sslcert', o.sslcert);
  if (o.sslkey !== undefined) ssl.key = await readSslFile('sslkey', o.sslkey);
  if (o.sslrootcert !== undefined) ssl.ca = await readSslFile('sslrootcert', o.sslrootcert);
  if (o.sslcrl !== undefined) ssl.crl = await readSslFile('sslcrl', o.sslcrl);
  const verifyCa = mode === 'verify-ca' || (mode === 'require' && o.sslrootcert !== undefined);
  if (mode === 'require' && !verifyCa) {
    ssl.rejectUnauthorized = false;
  } else {
    ssl.rejectUnauthorized = true;
    // verify-ca: the chain is checked, the host name is not.
    if (verifyCa) ssl.checkServerIdentity = () => undefined;
  }
  return ssl;
}

/** Timeouts of the pgjsonb pools: a call never hangs on a server that stopped answering. */
export const PGJSONB_TIMEOUTS = { connectMs: 10_000, queryMs: 30_000, statementMs: 30_000 } as const;
/** `clean_old_jobs` may purge large tables: its statements may take this long. */
const CLEAN_TIMEOUT_MS = 600_000;

/**
 * node-postgres pool settings for the options: every connection parameter a separate field
 * (a Unix socket directory or an IPv6 address as host works as with libpq), timeouts, and at
 * least 4 connections (the master's job cache and event feeds may share one instance).
 */
export async function pgjsonbPoolConfig(o: PgjsonbConnectionOptions, role: string): Promise<pg.PoolConfig> {
  return {
    host: o.host,
    port: o.port,
    user: o.user,
    password: o.password,
    database: o.database,
    ssl: await pgjsonbSslConfig(o),
    max: 4,
    idleTimeoutMillis: 10_000,
    connectionTimeoutMillis: PGJSONB_TIMEOUTS.connectMs,
    query_timeout: PGJSONB_TIMEOUTS.queryMs,
    statement_timeout: PGJSONB_TIMEOUTS.statementMs,
    keepAlive: true,
    application_name: `jobledger-pgjsonb-${role}`,
  };
}

function json(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value);
}

interface Connection {
  pool: pg.Pool;
  ready?: Promise<void>;
}

class PgjsonbReturner implements Returner {
  private readonly connections = new Map<string, Connection>();

  constructor(private readonly ctx: ReturnerContext) {}

  /** The options of this call: the key of its pool. */
  private connectionOptions(ret?: ReturnLoad): PgjsonbConnectionOptions {
    const o = returnerOptions(this.ctx, PGJSONB_PREFIX, ATTRS, DEFAULTS, ret);
    return pgjsonbConnectionOptions(o);
  }

  /** The pool for the options of this call, the schema created on its first use. */
  private async connection(ret?: ReturnLoad): Promise<pg.Pool> {
    const options = this.connectionOptions(ret);
    const key = JSON.stringify(options);
    let conn = this.connections.get(key);
    if (!conn) {
      const config = await pgjsonbPoolConfig(options, this.ctx.role);
      conn = this.connections.get(key);
      if (!conn) {
        const pool = new pg.Pool(config);
        // An idle client's error (server restart) must not crash the process.
        pool.on('error', (err) => this.ctx.logger.warn({ err }, 'pgjsonb: idle PostgreSQL connection failed'));
        // A checked-out client's error (the server stopped mid-call) fails its query; the event
        // itself must not become an uncaught exception.
        pool.on('connect', (client) => client.on('error', () => undefined));
        conn = { pool };
        this.connections.set(key, conn);
      }
    }
    const c = conn;
    c.ready ??= this.createSchema(c.pool).catch((err: unknown) => {
      c.ready = undefined;
      throw err;
    });
    await c.ready;
    return c.pool;
  }

  private async createSchema(pool: pg.Pool): Promise<void> {
    // A user with rights on existing tables only (as Salt's setup has it) must not need CREATE.
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (VALUES ('jids'), ('salt_returns'), ('salt_events')) t(name) WHERE to_regclass(name) IS NOT NULL`,
    );
    if (rows[0]?.n === 3) return;
    await this.transaction(pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_SCHEMA]);
      await client.query(PGJSONB_SCHEMA);
    });
  }

  private async transaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** Runs `fn` and turns its failure into a ReturnerError. */
  private async run<T>(what: string, fn: () => Promise<T>, unavailableText?: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ReturnerError) throw err;
      if (isUnavailable(err)) {
        const text = unavailableText ?? `could not ${what}: PostgreSQL server unavailable.`;
        throw new ReturnerError(NAME, `${text} (${errorText(err)})`, { retryable: true, cause: err });
      }
      // Only the data can make a write fail for ever (SQLSTATE classes 21, 22, 23, 54: a value
      // too long, invalid text, a constraint). Anything else — a login refused, a database or
      // table missing, a read-only server after a failover, a deadlock — may be put right, so
      // whoever feeds this returner holds the return and tries again rather than skip it.
      throw new ReturnerError(NAME, `could not ${what}: ${errorText(err)}`, { retryable: !isDataErrorCode(errorCode(err)), cause: err });
    }
  }

  async returner(ret: ReturnLoad): Promise<void> {
    await this.run(
      `store the return of ${ret.id} for job ${ret.jid}`,
      async () => {
        const pool = await this.connection(ret);
        const success = ret.success === undefined || ret.success === null ? 'false' : String(ret.success);
        await this.transaction(pool, async (client) => {
          await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_RETURN, JSON.stringify([ret.jid, ret.id])]);
          await client.query(
            `INSERT INTO salt_returns (fun, jid, return, id, success, full_ret, alter_time)
             SELECT $1::varchar, $2::varchar, $3::jsonb, $4::varchar, $5::varchar, $6::jsonb, now()
             WHERE NOT EXISTS (SELECT 1 FROM salt_returns WHERE jid = $2 AND id = $4 AND full_ret = $6::jsonb)`,
            [ret.fun, ret.jid, json(ret.return), ret.id, success, json(ret)],
          );
        });
      },
      UNAVAILABLE_TEXT,
    );
  }

  async eventReturn(events: readonly ReturnerEvent[]): Promise<void> {
    if (events.length === 0) return;
    await this.run('store events', async () => {
      const pool = await this.connection();
      await this.transaction(pool, async (client) => {
        // One lock for the batch (not one per event: a big batch would fill the lock table),
        // so two writers never both find an event missing and both store it.
        await client.query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_EVENT]);
        for (const event of events) {
          const tag = event.tag ?? '';
          await client.query(
            `INSERT INTO salt_events (tag, data, master_id, alter_time)
             SELECT $1::varchar, $2::jsonb, $3::varchar, now()
             WHERE NOT EXISTS (SELECT 1 FROM salt_events WHERE tag = $1 AND data = $2::jsonb)`,
            [tag, json(event.data ?? ''), this.ctx.hostId],
          );
        }
      });
    });
  }

  async saveLoad(jid: string, load: Record<string, unknown>): Promise<void> {
    await this.run(`store the load of job ${jid}`, async () => {
      // An agent stores the load where its --return stores the returns: the load carries the
      // job's ret_config / ret_kwargs. The master's job cache uses its configuration only.
      const pool = await this.connection(this.ctx.role === 'agent' ? (load as ReturnLoad) : undefined);
      await pool.query('INSERT INTO jids (jid, load) VALUES ($1, $2::jsonb) ON CONFLICT (jid) DO NOTHING', [jid, json(load)]);
    });
  }

  async getLoad(jid: string): Promise<Record<string, unknown>> {
    return this.run(`read the load of job ${jid}`, async () => {
      const pool = await this.connection();
      const { rows } = await pool.query<{ load: Record<string, unknown> }>('SELECT load FROM jids WHERE jid = $1', [jid]);
      return rows[0]?.load ?? {};
    });
  }

  async getJid(jid: string): Promise<Record<string, unknown>> {
    return this.run(`read the returns of job ${jid}`, async () => {
      const pool = await this.connection();
      const { rows } = await pool.query<{ id: string; full_ret: unknown }>(
        'SELECT id, full_ret FROM salt_returns WHERE jid = $1 ORDER BY alter_time, id',
        [jid],
      );
      const out: Record<string, unknown> = {};
      for (const row of rows) out[row.id] = row.full_ret;
      return out;
    });
  }

  async getFun(fun: string): Promise<Record<string, unknown>> {
    return this.run(`read the last returns of ${fun}`, async () => {
      const pool = await this.connection();
      const { rows } = await pool.query<{ id: string; full_ret: unknown }>(
        `SELECT DISTINCT ON (id) id, full_ret FROM salt_returns WHERE fun = $1
         ORDER BY id, jid DESC, alter_time DESC`,
        [fun],
      );
      const out: Record<string, unknown> = {};
      for (const row of rows) out[row.id] = row.full_ret;
      return out;
    });
  }

  async getJids(): Promise<Record<string, unknown>> {
    return this.run('list jobs', async () => {
      const pool = await this.connection();
      const { rows } = await pool.query<{ jid: string; load: Record<string, unknown> }>('SELECT jid, load FROM jids ORDER BY jid');
      const out: Record<string, unknown> = {};
      for (const row of rows) out[row.jid] = formatJidInstance(row.jid, row.load);
      return out;
    });
  }

  async getJidsFilter(count: number, filterFindJob = true): Promise<Record<string, unknown>[]> {
    if (count <= 0) return [];
    return this.run('list jobs', async () => {
      const pool = await this.connection();
      const { rows } = await pool.query<{ jid: string; load: Record<string, unknown> }>(
        `SELECT jid, load FROM jids
         WHERE NOT $1::boolean OR (load->>'fun') IS DISTINCT FROM 'saltutil.find_job'
         ORDER BY jid DESC LIMIT $2`,
        [filterFindJob, count],
      );
      return rows.reverse().map((row) => formatJidInstanceExt(row.jid, row.load));
    });
  }

  async getMinions(): Promise<string[]> {
    return this.run('list minions', async () => {
      const pool = await this.connection();
      const { rows } = await pool.query<{ id: string }>('SELECT DISTINCT id FROM salt_returns ORDER BY id');
      return rows.map((r) => r.id);
    });
  }

  /** Salt's purge or (with `archive_jobs`) archive-then-purge of rows older than `keep_jobs_seconds`. */
  async cleanOldJobs(): Promise<void> {
    const keep = Math.trunc(keepJobsSeconds(this.ctx.config));
    if (!(keep > 0)) return;
    const archive = Boolean(this.ctx.config['archive_jobs']);
    await this.run('clean old jobs', async () => {
      const pool = await this.connection();
      // Purging a large table may take longer than a call's usual 30 s; one transaction, so
      // an archive never holds rows that were not purged (or the other way round).
      await this.transaction(pool, async (client) => {
        await client.query(`SET LOCAL statement_timeout = ${CLEAN_TIMEOUT_MS}`);
        // node-postgres reads a per-query `query_timeout` (its types do not list it).
        const q = (text: string, values: unknown[] = []) =>
          client.query({ text, values, query_timeout: CLEAN_TIMEOUT_MS } as pg.QueryConfig);
        const { rows } = await q('SELECT now() - make_interval(secs => $1) AS stamp', [keep]);
        const stamp = (rows[0] as { stamp: Date }).stamp;
        if (archive) {
          for (const table of ['jids', 'salt_returns', 'salt_events']) {
            await q(`CREATE TABLE IF NOT EXISTS ${table}_archive (LIKE ${table})`);
          }
          await q(
            'INSERT INTO jids_archive SELECT * FROM jids WHERE jid IN (SELECT DISTINCT jid FROM salt_returns WHERE alter_time < $1)',
            [stamp],
          );
          await q('INSERT INTO salt_returns_archive SELECT * FROM salt_returns WHERE alter_time < $1', [stamp]);
          await q('INSERT INTO salt_events_archive SELECT * FROM salt_events WHERE alter_time < $1', [stamp]);
        }
        await q('DELETE FROM jids WHERE jid IN (SELECT DISTINCT jid FROM salt_returns WHERE alter_time < $1)', [stamp]);
        await q('DELETE FROM salt_returns WHERE alter_time < $1', [stamp]);
        await q('DELETE FROM salt_events WHERE alter_time < $1', [stamp]);
      });
    });
  }

  async close(): Promise<void> {
    const pools = [...this.connections.values()].map((c) => c.pool);
    this.connections.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }
}

export const pgjsonb: ReturnerModule = {
  name: NAME,
  description: "Stores returns, loads and events in PostgreSQL (Salt's jids, salt_returns, salt_events)",
  create: (ctx) => new PgjsonbReturner(ctx),
};
