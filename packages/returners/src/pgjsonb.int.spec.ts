import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReturnerError, type ReturnLoad } from '@jobledger/core';
import { freshDatabase, uniqueName } from '../../../test/support/servers.js';
import { ReturnerRegistry } from './registry.js';
import { isUnavailable, pgjsonbConnectionOptions, pgjsonbPoolConfig, UNAVAILABLE_TEXT } from './pgjsonb.js';
import { recordingLogger } from './testing/recording-logger.js';

let url: string;
let altUrl: string;
let db: pg.Pool;
let registry: ReturnerRegistry;

/** pgjsonb's options for the database at `u`, as a nested `returner.pgjsonb` mapping. */
function optionsOf(u: string): Record<string, unknown> {
  const p = new URL(u);
  return {
    host: p.hostname,
    port: Number(p.port || 5432),
    user: decodeURIComponent(p.username),
    pass: decodeURIComponent(p.password),
    db: decodeURIComponent(p.pathname.slice(1)),
    sslmode: 'disable',
  };
}

function open(config: Record<string, unknown> = {}): ReturnerRegistry {
  return new ReturnerRegistry({
    role: 'master',
    hostId: 'master_master',
    config: { 'returner.pgjsonb': optionsOf(url), ...config },
    logger: recordingLogger(),
  });
}

beforeAll(async () => {
  url = await freshDatabase('returners_pgjsonb');
  altUrl = await freshDatabase('returners_pgjsonb_alt');
  db = new pg.Pool({ connectionString: url, max: 2 });
  registry = open();
});

afterAll(async () => {
  await registry?.closeAll();
  await db?.end();
});

const JID = '20250301120000123456';
const RET: ReturnLoad = {
  id: 'web1',
  jid: JID,
  fun: 'test.echo',
  fun_args: ['hi'],
  return: ['hi', { nested: true }],
  retcode: 0,
  success: true,
};

describe('pgjsonb', () => {
  it("creates Salt's schema on first use, and again without harm", async () => {
    await (
      await registry.get('pgjsonb')
    ).getMinions!();
    const { rows } = await db.query<{ table_name: string; column_name: string; data_type: string }>(
      `SELECT table_name, column_name, data_type FROM information_schema.columns
       WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
    );
    expect(rows.map((r) => `${r.table_name}.${r.column_name}:${r.data_type}`)).toEqual([
      'jids.jid:character varying',
      'jids.load:jsonb',
      'salt_events.id:bigint',
      'salt_events.tag:character varying',
      'salt_events.data:jsonb',
      'salt_events.alter_time:timestamp with time zone',
      'salt_events.master_id:character varying',
      'salt_returns.fun:character varying',
      'salt_returns.jid:character varying',
      'salt_returns.return:jsonb',
      'salt_returns.id:character varying',
      'salt_returns.success:character varying',
      'salt_returns.full_ret:jsonb',
      'salt_returns.alter_time:timestamp with time zone',
    ]);
    const { rows: idx } = await db.query<{ indexname: string }>(
      `SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`,
    );
    expect(idx.map((r) => r.indexname)).toEqual(
      expect.arrayContaining([
        'idx_jids_jsonb',
        'idx_salt_events_data',
        'idx_salt_events_tag',
        'idx_salt_returns_fun',
        'idx_salt_returns_full_ret',
        'idx_salt_returns_id',
        'idx_salt_returns_jid',
        'idx_salt_returns_return',
      ]),
    );
    const again = open();
    await Promise.all([(await again.get('pgjsonb')).getMinions!(), (await open().get('pgjsonb')).getMinions!()]);
    await again.closeAll();
  });

  it('stores a return as Salt does and skips an identical one delivered again', async () => {
    const r = await registry.get('pgjsonb');
    const before = Date.now();
    await r.returner(RET);
    await Promise.all(Array.from({ length: 5 }, () => r.returner({ ...RET })));
    await r.returner({ id: 'web2', jid: JID, fun: 'test.echo', fun_args: ['hi'], return: 'plain' });
    // a different return of the same minion is a second row, as in Salt
    await r.returner({ ...RET, return: 'changed' });
    const { rows } = await db.query<{
      fun: string;
      jid: string;
      return: unknown;
      id: string;
      success: string;
      full_ret: unknown;
      alter_time: Date;
    }>('SELECT * FROM salt_returns ORDER BY alter_time, id');
    expect(rows.map((r) => [r.id, r.success, r.return])).toEqual([
      ['web1', 'true', ['hi', { nested: true }]],
      ['web2', 'false', 'plain'],
      ['web1', 'true', 'changed'],
    ]);
    expect(rows[0]).toMatchObject({ fun: 'test.echo', jid: JID, full_ret: RET });
    expect(rows[0]!.alter_time.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(await r.getJid!(JID)).toEqual({
      web1: { ...RET, return: 'changed' },
      web2: { id: 'web2', jid: JID, fun: 'test.echo', fun_args: ['hi'], return: 'plain' },
    });
    expect(await r.getMinions!()).toEqual(['web1', 'web2']);
  });

  it('keeps the publish load (ON CONFLICT DO NOTHING) and lists jobs', async () => {
    const r = await registry.get('pgjsonb');
    const load = { jid: JID, fun: 'test.echo', arg: ['hi'], tgt: 'web*', tgt_type: 'glob', user: 'root' };
    await r.saveLoad!(JID, load);
    await r.saveLoad!(JID, { ...RET, cmd: '_return' });
    expect(await r.getLoad!(JID)).toEqual(load);
    expect(await r.getLoad!('20000101000000000000')).toEqual({});
    const find = '20250301120000200000';
    const later = '20250301120000300000';
    await r.saveLoad!(find, { jid: find, fun: 'saltutil.find_job', arg: [JID], tgt: ['web1'], tgt_type: 'list' });
    await r.saveLoad!(later, { jid: later, fun: 'test.ping', arg: [], tgt: '*', tgt_type: 'glob' });
    const jids = await r.getJids!();
    expect(Object.keys(jids).sort()).toEqual([JID, find, later]);
    expect(jids[JID]).toEqual({
      Function: 'test.echo',
      Arguments: ['hi'],
      Target: 'web*',
      'Target-type': 'glob',
      User: 'root',
      StartTime: '2025, Mar 01 12:00:00.123456',
    });
    expect((await r.getJidsFilter!(5)).map((j) => j['JID'])).toEqual([JID, later]);
    expect((await r.getJidsFilter!(2, false)).map((j) => j['JID'])).toEqual([find, later]);
  });

  it("get_fun gives each minion's last return of a function", async () => {
    const r = await registry.get('pgjsonb');
    const older = '20250301110000000000';
    const newer = '20250301130000000000';
    await r.returner({ id: 'db1', jid: newer, fun: 'grains.item', fun_args: ['os'], return: { os: 'Debian 13' } });
    await r.returner({ id: 'db1', jid: older, fun: 'grains.item', fun_args: ['os'], return: { os: 'Debian 12' } });
    await r.returner({ id: 'db2', jid: older, fun: 'grains.item', fun_args: ['os'], return: { os: 'Alma' } });
    const last = await r.getFun!('grains.item');
    expect(Object.keys(last).sort()).toEqual(['db1', 'db2']);
    expect(last['db1']).toMatchObject({ jid: newer, return: { os: 'Debian 13' } });
    expect(last['db2']).toMatchObject({ jid: older });
  });

  it('stores events with the master id, once', async () => {
    const r = await registry.get('pgjsonb');
    const events = [
      { tag: JID, data: { minions: ['web1'], _stamp: '2025-03-01T12:00:00.123456' } },
      { tag: `salt/job/${JID}/ret/web1`, data: { ...RET, _stamp: '2025-03-01T12:00:00.200000' } },
    ];
    await r.eventReturn!(events);
    await r.eventReturn!(events);
    await r.eventReturn!([]);
    const { rows } = await db.query<{ tag: string; data: unknown; master_id: string }>(
      'SELECT tag, data, master_id FROM salt_events ORDER BY id',
    );
    expect(rows).toEqual(events.map((e) => ({ ...e, master_id: 'master_master' })));
  });

  it('cleanOldJobs purges, or archives then purges, rows older than keep_jobs_seconds', async () => {
    const r = await registry.get('pgjsonb');
    const oldJid = '20240101000000000000';
    await r.saveLoad!(oldJid, { jid: oldJid, fun: 'test.ping', tgt: '*' });
    await r.returner({ id: 'old1', jid: oldJid, fun: 'test.ping', fun_args: [], return: true });
    await r.eventReturn!([{ tag: 'old/event', data: { _stamp: 'x' } }]);
    await db.query(`UPDATE salt_returns SET alter_time = now() - interval '2 hours' WHERE jid = $1`, [oldJid]);
    await db.query(`UPDATE salt_events SET alter_time = now() - interval '2 hours' WHERE tag = 'old/event'`);

    const archiving = open({ keep_jobs_seconds: 3600, archive_jobs: true });
    await (
      await archiving.get('pgjsonb')
    ).cleanOldJobs!();
    await archiving.closeAll();
    const count = async (sql: string) => Number((await db.query<{ n: string }>(sql)).rows[0]!.n);
    expect(await count(`SELECT count(*) AS n FROM jids WHERE jid = '${oldJid}'`)).toBe(0);
    expect(await count(`SELECT count(*) AS n FROM salt_returns WHERE jid = '${oldJid}'`)).toBe(0);
    expect(await count(`SELECT count(*) AS n FROM salt_events WHERE tag = 'old/event'`)).toBe(0);
    expect(await count(`SELECT count(*) AS n FROM jids_archive WHERE jid = '${oldJid}'`)).toBe(1);
    expect(await count(`SELECT count(*) AS n FROM salt_returns_archive WHERE jid = '${oldJid}'`)).toBe(1);
    expect(await count(`SELECT count(*) AS n FROM salt_events_archive WHERE tag = 'old/event'`)).toBe(1);
    // recent rows stay
    expect(await count(`SELECT count(*) AS n FROM jids WHERE jid = '${JID}'`)).toBe(1);
    expect(await count(`SELECT count(*) AS n FROM salt_returns WHERE jid = '${JID}'`)).toBe(3);

    await r.returner({ id: 'old2', jid: oldJid, fun: 'test.ping', fun_args: [], return: true });
    await db.query(`UPDATE salt_returns SET alter_time = now() - interval '2 hours' WHERE jid = $1`, [oldJid]);
    const disabled = open({ keep_jobs_seconds: 0 });
    await (
      await disabled.get('pgjsonb')
    ).cleanOldJobs!();
    await disabled.closeAll();
    expect(await count(`SELECT count(*) AS n FROM salt_returns WHERE jid = '${oldJid}'`)).toBe(1);
    const purging = open({ keep_jobs_seconds: 3600 });
    await (
      await purging.get('pgjsonb')
    ).cleanOldJobs!();
    await purging.closeAll();
    expect(await count(`SELECT count(*) AS n FROM salt_returns WHERE jid = '${oldJid}'`)).toBe(0);
    expect(await count(`SELECT count(*) AS n FROM salt_returns_archive WHERE jid = '${oldJid}'`)).toBe(1);
  });

  it('works for a user with rights on the existing tables only (no CREATE)', async () => {
    const role = uniqueName('salt_dml');
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'dml-pass'`);
    await db.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
    await db.query(`GRANT SELECT, INSERT, DELETE ON jids, salt_returns, salt_events TO ${role}`);
    await db.query(`GRANT USAGE ON SEQUENCE seq_salt_events_id TO ${role}`);
    const dml = new ReturnerRegistry({
      role: 'agent',
      hostId: 'web9',
      config: { 'returner.pgjsonb': { ...optionsOf(url), user: role, pass: 'dml-pass' } },
      logger: recordingLogger(),
    });
    try {
      const r = await dml.get('pgjsonb');
      await r.returner({ ...RET, id: 'dml1' });
      await r.eventReturn!([{ tag: 'dml/event', data: { n: 1 } }]);
      expect(Object.keys(await r.getJid!(JID))).toContain('dml1');
    } finally {
      await dml.closeAll();
      await db.query(`DROP OWNED BY ${role}`);
      await db.query(`DROP ROLE ${role}`);
    }
  });

  it('--return_config selects another database', async () => {
    const alt = new ReturnerRegistry({
      role: 'agent',
      hostId: 'web1',
      config: { 'returner.pgjsonb': optionsOf(url), 'alternative.returner.pgjsonb.db': optionsOf(altUrl)['db'] },
      logger: recordingLogger(),
    });
    await (await alt.get('pgjsonb', { retConfig: 'alternative' })).returner({ ...RET, id: 'alt1', ret_config: 'alternative' });
    await alt.closeAll();
    const other = new pg.Pool({ connectionString: altUrl, max: 1 });
    try {
      expect((await other.query('SELECT id, full_ret FROM salt_returns')).rows).toEqual([
        { id: 'alt1', full_ret: { ...RET, id: 'alt1', ret_config: 'alternative' } },
      ]);
    } finally {
      await other.end();
    }
    expect(Number((await db.query(`SELECT count(*) AS n FROM salt_returns WHERE id = 'alt1'`)).rows[0].n)).toBe(0);
  });

  it("an unreachable server is a retryable error with Salt's text; bad data is not retryable", async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const down = new ReturnerRegistry({
      role: 'agent',
      hostId: 'web1',
      config: { 'returner.pgjsonb': { ...optionsOf(url), host: '127.0.0.1', port } },
      logger: recordingLogger(),
    });
    const err = (await (await down.get('pgjsonb')).returner(RET).catch((e: unknown) => e)) as ReturnerError;
    await down.closeAll();
    expect(err).toBeInstanceOf(ReturnerError);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(UNAVAILABLE_TEXT);
    expect(err.message).toContain('ECONNREFUSED');

    const r = await registry.get('pgjsonb');
    const bad = (await r.returner({ ...RET, fun: 'f'.repeat(60) }).catch((e: unknown) => e)) as ReturnerError;
    expect(bad).toBeInstanceOf(ReturnerError);
    expect(bad.retryable).toBe(false);
    expect(bad.message).toContain('value too long');

    // A database that is not there (yet), or a login refused: for an operator to put right, so
    // retryable — a master job cache feed holds its returns rather than skip them.
    for (const over of [{ db: 'no_such_database' }, { pass: 'wrong password' }]) {
      const wrong = new ReturnerRegistry({
        role: 'master',
        hostId: 'm',
        config: { 'returner.pgjsonb': { ...optionsOf(url), ...over } },
        logger: recordingLogger(),
      });
      const e = (await (await wrong.get('pgjsonb')).returner(RET).catch((x: unknown) => x)) as ReturnerError;
      await wrong.closeAll();
      expect(e).toBeInstanceOf(ReturnerError);
      expect(e.retryable, e.message).toBe(true);
    }
  });

  it('stores a big batch of events under one lock, not one per event (the lock table stays small)', async () => {
    // More distinct tags than max_locks_per_transaction: one lock per event would fill the
    // shared lock table on a big enough batch (53200, retried forever).
    const count = 3000;
    const events = Array.from({ length: count }, (_, i) => ({ tag: `jobledger/test/batch/${i}`, data: { i } }));
    const r = await registry.get('pgjsonb');
    let done = false;
    let most = 0;
    const watching = (async () => {
      while (!done) {
        // pgjsonb's event locks: advisory locks whose first key is "pgev".
        const { rows } = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND classid::bigint = ${0x7067_6576}`,
        );
        most = Math.max(most, rows[0]!.n);
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    const started = Date.now();
    await r.eventReturn!(events).finally(() => (done = true));
    await watching;
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM salt_events WHERE tag LIKE 'jobledger/test/batch/%'`);
    expect(rows[0].n).toBe(count);
    // The batch took long enough for the watcher to see its locks.
    expect(Date.now() - started).toBeGreaterThan(100);
    expect(most).toBe(1);
  }, 120_000);

  it('connects through a Unix socket directory given as host, as libpq does', async () => {
    const target = new URL(url);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'jl-pgsock-'));
    // A port no TCP server uses: a connection that ignored the socket directory would fail.
    const fakePort = 1;
    const proxy = net.createServer((client) => {
      const upstream = net.connect(Number(target.port), target.hostname);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    proxy.listen(path.join(dir, `.s.PGSQL.${fakePort}`));
    await once(proxy, 'listening');
    const viaSocket = new ReturnerRegistry({
      role: 'agent',
      hostId: 'sock1',
      config: { 'returner.pgjsonb': { ...optionsOf(url), host: dir, port: fakePort } },
      logger: recordingLogger(),
    });
    try {
      await (await viaSocket.get('pgjsonb')).returner({ ...RET, id: 'sock1' });
    } finally {
      await viaSocket.closeAll();
      proxy.close();
      await rm(dir, { recursive: true, force: true });
    }
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM salt_returns WHERE id = 'sock1'`);
    expect(rows[0].n).toBe(1);
  });

  it('connects to an IPv6 host (::1)', async (ctx) => {
    const target = new URL(url);
    const proxy = net.createServer((client) => {
      const upstream = net.connect(Number(target.port), target.hostname);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    const listening = await new Promise<boolean>((resolve) => {
      proxy.once('error', () => resolve(false));
      proxy.listen(0, '::1', () => resolve(true));
    });
    if (!listening) ctx.skip();
    const port = (proxy.address() as AddressInfo).port;
    const v6 = new ReturnerRegistry({
      role: 'agent',
      hostId: 'v6',
      config: { 'returner.pgjsonb': { ...optionsOf(url), host: '::1', port } },
      logger: recordingLogger(),
    });
    try {
      await (await v6.get('pgjsonb')).returner({ ...RET, id: 'v6host' });
    } finally {
      await v6.closeAll();
      proxy.close();
    }
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM salt_returns WHERE id = 'v6host'`);
    expect(rows[0].n).toBe(1);
  });

  it('sslmode require asks for SSL (this test server has none); disable does not', async () => {
    const withSsl = new ReturnerRegistry({
      role: 'agent',
      hostId: 'ssl1',
      config: { 'returner.pgjsonb': { ...optionsOf(url), sslmode: 'require' } },
      logger: recordingLogger(),
    });
    const err = (await (await withSsl.get('pgjsonb')).returner(RET).catch((e: unknown) => e)) as ReturnerError;
    await withSsl.closeAll();
    expect(err).toBeInstanceOf(ReturnerError);
    expect(err.message).toContain('does not support SSL');
    // The server's configuration, not the return: a feed holds the return until it is fixed.
    expect(err.retryable).toBe(true);

    const missing = new ReturnerRegistry({
      role: 'agent',
      hostId: 'ssl2',
      config: { 'returner.pgjsonb': { ...optionsOf(url), sslmode: 'verify-full', sslrootcert: '/nonexistent/root.crt' } },
      logger: recordingLogger(),
    });
    const err2 = (await (await missing.get('pgjsonb')).returner(RET).catch((e: unknown) => e)) as ReturnerError;
    await missing.closeAll();
    expect(err2).toBeInstanceOf(ReturnerError);
    expect(err2.message).toContain('could not read the sslrootcert file /nonexistent/root.crt');
    expect(err2.retryable).toBe(true);
  });

  it("recognises pg's connect, query and statement timeouts as retryable", async () => {
    // A server that accepts connections and never answers.
    const silent = net.createServer(() => undefined);
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const silentPort = (silent.address() as AddressInfo).port;
    const target = new URL(url);
    const base = {
      user: decodeURIComponent(target.username),
      password: decodeURIComponent(target.password),
      database: decodeURIComponent(target.pathname.slice(1)),
    };

    const stuck = new pg.Pool({ ...base, host: '127.0.0.1', port: silentPort, connectionTimeoutMillis: 200, max: 1 });
    const connectErr = await stuck.query('SELECT 1').catch((e: unknown) => e);
    expect(String(connectErr)).toMatch(/timeout/i);
    expect(isUnavailable(connectErr)).toBe(true);
    await stuck.end();
    silent.close();

    // The pool is full and its only client is busy: pg-pool's checkout timeout.
    const small = new pg.Pool({ ...base, host: target.hostname, port: Number(target.port), max: 1, connectionTimeoutMillis: 200 });
    const busy = small.query('SELECT pg_sleep(1)');
    const checkoutErr = await small.query('SELECT 1').catch((e: unknown) => e);
    expect(String(checkoutErr)).toContain('timeout exceeded when trying to connect');
    expect(isUnavailable(checkoutErr)).toBe(true);
    await busy;
    await small.end();

    const reads = new pg.Pool({ ...base, host: target.hostname, port: Number(target.port), max: 1, query_timeout: 200 });
    const readErr = await reads.query('SELECT pg_sleep(2)').catch((e: unknown) => e);
    expect(String(readErr)).toContain('Query read timeout');
    expect(isUnavailable(readErr)).toBe(true);
    await reads.end();

    const statements = new pg.Pool({ ...base, host: target.hostname, port: Number(target.port), max: 1, statement_timeout: 200 });
    const statementErr = await statements.query('SELECT pg_sleep(2)').catch((e: unknown) => e);
    expect((statementErr as { code?: string }).code).toBe('57014');
    expect(isUnavailable(statementErr)).toBe(true);
    await statements.end();

    // Bad SQL is not a timeout.
    expect(isUnavailable(await db.query('SELECT nope FROM nowhere').catch((e: unknown) => e))).toBe(false);
  }, 30_000);
});

describe('pgjsonb pool settings', () => {
  it('passes each connection parameter separately, with timeouts, keep-alive and 4 connections', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'jl-pgssl-'));
    try {
      for (const f of ['client.crt', 'client.key', 'root.crt', 'root.crl']) await writeFile(path.join(dir, f), `${f} content`);
      const o = pgjsonbConnectionOptions({ host: '::1', port: '5433', user: 'u@x', pass: 'p:/@', db: 'd b' });
      const c = await pgjsonbPoolConfig(o, 'master');
      expect(c).toMatchObject({ host: '::1', port: 5433, user: 'u@x', password: 'p:/@', database: 'd b', ssl: false, keepAlive: true });
      expect(c.connectionString).toBeUndefined();
      expect(c.max).toBeGreaterThanOrEqual(4);
      expect(c.connectionTimeoutMillis).toBe(10_000);
      expect(c.query_timeout).toBe(30_000);
      expect(c.statement_timeout).toBe(30_000);

      const ssl = async (extra: Record<string, unknown>) =>
        (await pgjsonbPoolConfig(pgjsonbConnectionOptions({ host: 'db', port: 5432, ...extra }), 'agent')).ssl;
      expect(await ssl({ sslmode: 'disable' })).toBe(false);
      expect(await ssl({ sslmode: 'prefer' })).toBe(false);
      expect(await ssl({ sslmode: 'require' })).toEqual({ rejectUnauthorized: false });
      const files = {
        sslcert: path.join(dir, 'client.crt'),
        sslkey: path.join(dir, 'client.key'),
        sslrootcert: path.join(dir, 'root.crt'),
        sslcrl: path.join(dir, 'root.crl'),
      };
      const full = (await ssl({ sslmode: 'verify-full', ...files })) as Record<string, unknown>;
      expect(full).toMatchObject({ rejectUnauthorized: true });
      expect(String(full['cert'])).toBe('client.crt content');
      expect(String(full['key'])).toBe('client.key content');
      expect(String(full['ca'])).toBe('root.crt content');
      expect(String(full['crl'])).toBe('root.crl content');
      expect(full['checkServerIdentity']).toBeUndefined();
      const ca = (await ssl({ sslmode: 'verify-ca', sslrootcert: files.sslrootcert })) as Record<string, unknown>;
      expect(ca['rejectUnauthorized']).toBe(true);
      expect(typeof ca['checkServerIdentity']).toBe('function');
      // As libpq: require with a root certificate verifies the chain like verify-ca.
      const requireCa = (await ssl({ sslmode: 'require', sslrootcert: files.sslrootcert })) as Record<string, unknown>;
      expect(requireCa['rejectUnauthorized']).toBe(true);
      expect(() => pgjsonbConnectionOptions({ host: 'db', port: 5432, sslmode: 'sometimes' })).toThrow(/sslmode must be one of/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
