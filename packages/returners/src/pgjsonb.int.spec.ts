import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReturnerError, type ReturnLoad } from '@jobledger/core';
import { freshDatabase, uniqueName } from '../../../test/support/servers.js';
import { ReturnerRegistry } from './registry.js';
import { UNAVAILABLE_TEXT } from './pgjsonb.js';
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
  });
});
