// Given a ledger projected by the running projector, when the stream is replayed into another
// schema, then its tables equal the live ones column for column; `audit verify` finds nothing on
// a clean ledger and reports exactly the rows and chain values that were tampered with; the
// rebuild honours retention's removals; `--swap` replaces the live tables while the projector
// keeps working. Real nats-server (the world's own) and PostgreSQL.

import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAIN_ZERO, chainOver, microsToJid } from '@jobledger/core';
import { SchemaError } from '@jobledger/runtime';
import { auditVerify, COMPARED_TABLES, formatDifference } from './audit-verify.js';
import { replay } from './replay.js';
import { cleanOldJobs } from './retention.js';
import { startProjector, type Projector } from './projector.js';
import {
  agentStarted,
  append,
  appendRaw,
  lastSeq,
  MASTER_ID,
  newJid,
  procEnded,
  procStarted,
  published,
  quietLogger,
  readStream,
  returned,
  rows,
  waitFor,
  world,
  type World,
} from '../test/support.js';

let w: World;
let projector: Projector;
const NAME = 'projector';

/** Every compared table of a schema, ordered by all its columns. */
async function dump(db: pg.Pool, schemaName: string): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const t of [...COMPARED_TABLES.map((s) => s.table), 'retention_log']) {
    out[t] = await rows(db, `SELECT * FROM "${schemaName}"."${t}" t ORDER BY to_jsonb(t)::text`);
  }
  return out;
}

const RETENTION_ENV = { JOBLEDGER_KEEP_JOBS_SECONDS: '86400' };
const verify = () =>
  auditVerify({ databaseUrl: w.databaseUrl, ledger: w.ledger, name: NAME, masterId: MASTER_ID, batch: 50, env: RETENTION_ENV });

async function settled(): Promise<number> {
  const last = await lastSeq(w.ledger);
  await waitFor('the projector to apply everything', () => projector.appliedSeq() >= last);
  return last;
}

let micro = 0n;
const jidAgo = (ms: number) => microsToJid(BigInt(Date.now() - ms) * 1000n + micro++);

/** A whole job: publication, and per agent proc.started, return, proc.ended. */
async function job(jid: string, agents: string[], ret: (id: string) => unknown = () => true): Promise<void> {
  await append(w.ledger, published(jid, { minions: agents, fun: 'test.echo', arg: ['x'] }));
  for (const [i, id] of agents.entries()) {
    await append(
      w.ledger,
      procStarted(jid, id, 100 + i, 'test.echo'),
      returned(jid, id, ret(id), { fun: 'test.echo', fun_args: ['x'] }),
      procEnded(jid, id, 100 + i, { retcode: 0 }, 'test.echo'),
    );
  }
}

const jids: string[] = [];

beforeAll(async () => {
  w = await world('replay');
  // Small batches: many stored chain values.
  projector = await startProjector(w.config({ batch: 7 }), quietLogger());
  await append(w.ledger, agentStarted('web1'), agentStarted('web2'), agentStarted('db1'));
  for (let i = 0; i < 12; i++) {
    const jid = newJid();
    jids.push(jid);
    await job(jid, ['web1', 'web2', 'db1'], (id) => ({ id, n: i, text: 'é\u00e9 ✓' }));
  }
  await appendRaw(w.ledger, `ledger.job.${jids[0]}.ret.web1`, '{"not": "an event"');
  await append(w.ledger, agentStarted('web1'));
  await settled();
}, 120_000);

afterAll(async () => {
  await projector?.stop();
  await w?.close();
});

describe('replay', () => {
  it('rebuilds every read model into a schema, equal to the live tables in every column', async () => {
    const last = await settled();
    const r = await replay({ databaseUrl: w.databaseUrl, ledger: w.ledger, name: NAME, masterId: MASTER_ID, into: 'rebuilt', batch: 10 });
    expect(r).toMatchObject({ schema: 'rebuilt', fromSeq: 1, lastSeq: last, applied: last, deadLetters: 1 });
    const live = await dump(w.db, 'public');
    expect(live.salt_returns).toHaveLength(36);
    expect(live.dead_letters).toHaveLength(1);
    expect(await dump(w.db, 'rebuilt')).toEqual(live);
    // The stream's time, not the clock: alter_time is the message's time.
    const stream = await readStream(w.ledger, 1, last);
    const [ev] = await rows<{ id: string; alter_time: Date }>(w.db, 'SELECT id, alter_time FROM salt_events ORDER BY id LIMIT 1');
    expect(ev!.alter_time.toISOString()).toBe(stream.find((m) => m.seq === Number(ev!.id))!.time.toISOString());
    // Same chain head as the live checkpoint, which is the chain over the stream.
    const [a] = await rows<{ chain: string }>(w.db, 'SELECT chain FROM public.projector_checkpoint');
    const [b] = await rows<{ chain: string; last_seq: string }>(w.db, 'SELECT chain, last_seq FROM rebuilt.projector_checkpoint');
    expect(b).toEqual({ chain: a!.chain, last_seq: String(last) });
    expect(a!.chain).toBe(chainOver(CHAIN_ZERO, stream));
  });

  it('refuses a schema that already holds tables, and a partial rebuild with --swap', async () => {
    const base = { databaseUrl: w.databaseUrl, ledger: w.ledger, name: NAME, masterId: MASTER_ID };
    await expect(replay({ ...base, into: 'rebuilt' })).rejects.toThrow(SchemaError);
    await expect(replay({ ...base, into: 'rebuilt' })).rejects.toThrow(/schema rebuilt already holds/);
    await expect(replay({ ...base, fromSeq: 5, swap: true })).rejects.toThrow(/--swap needs a whole rebuild/);
  });

  it('rebuilds from a sequence: only the rows of the later events', async () => {
    const r = await replay({ databaseUrl: w.databaseUrl, ledger: w.ledger, name: NAME, masterId: MASTER_ID, into: 'partial', fromSeq: 20 });
    expect(r.fromSeq).toBe(20);
    // every message from 20 on is an event row or a dead letter, none before
    const [{ n }] = (await rows<{ n: number }>(
      w.db,
      'SELECT ((SELECT count(*) FROM partial.salt_events) + (SELECT count(*) FROM partial.dead_letters))::int AS n',
    )) as [{ n: number }];
    expect(n).toBe(r.lastSeq - 19);
    expect(await rows(w.db, 'SELECT last_seq::int AS s, chain FROM partial.projector_checkpoint')).toEqual([{ s: r.lastSeq, chain: null }]);
    expect((await rows<{ m: string }>(w.db, 'SELECT min(id)::text AS m FROM partial.salt_events'))[0]!.m).toBe('20');
  });

  it('rebuilds from a time: the first message stored at or after it', async () => {
    const timeOf = async (seq: number) => (await w.ledger.jsm.streams.getMessage(w.ledger.stream, { seq }))!.time;
    const since = await timeOf(20);
    const r = await replay({ databaseUrl: w.databaseUrl, ledger: w.ledger, name: NAME, masterId: MASTER_ID, into: 'since_t', since });
    // Stream times are kept to the millisecond here: messages stored in the same one as 20 come too.
    expect(r.fromSeq).toBeLessThanOrEqual(20);
    expect((await timeOf(r.fromSeq)).getTime()).toBeGreaterThanOrEqual(since.getTime());
    if (r.fromSeq > 1) expect((await timeOf(r.fromSeq - 1)).getTime()).toBeLessThan(since.getTime());
    const first = await rows<{ m: string }>(
      w.db,
      'SELECT least((SELECT min(id) FROM since_t.salt_events), (SELECT min(seq) FROM since_t.dead_letters))::text AS m',
    );
    expect(first[0]!.m).toBe(String(r.fromSeq));
  });
});

describe('audit verify', () => {
  it('finds nothing on a clean ledger', async () => {
    const last = await settled();
    const r = await verify();
    expect(r.differences).toEqual([]);
    expect(r).toMatchObject({ ok: true, seq: last, events: last, differenceCount: 0 });
    expect(r.chain.checked).toBeGreaterThan(5);
    expect(r.chain.diverging).toBe(0);
    // the scratch schema is gone
    expect(await rows(w.db, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'audit_%'")).toEqual([]);
  });

  it('reports exactly the rows changed, deleted and added, with table and jid', async () => {
    const [j1, j2, j3] = [jids[1]!, jids[2]!, jids[3]!];
    await w.db.query(`UPDATE salt_returns SET "return" = 'false' WHERE jid = $1 AND id = 'web2'`, [j1]);
    await w.db.query('DELETE FROM jids WHERE jid = $1', [j2]);
    await w.db.query(`INSERT INTO salt_events (id, tag, data, alter_time, master_id) VALUES (999999, $1, '{}', now(), 'x')`, [
      `salt/job/${j3}/ret/web9`,
    ]);
    const r = await verify();
    expect(r.ok).toBe(false);
    expect(r.differences.map(formatDifference)).toEqual([
      `jids: jid ${j2}: missing`,
      `salt_returns: jid ${j1} id web2: row differs (return)`,
      `salt_events: jid ${j3} event 999999: extra`,
    ]);
    expect(r.differenceCount).toBe(3);
    expect(r.chain.diverging).toBe(0);
    // put things back
    await w.db.query(`UPDATE salt_returns SET "return" = full_ret->'return' WHERE jid = $1 AND id = 'web2'`, [j1]);
    await w.db.query('INSERT INTO jids (jid, load) SELECT jid, load FROM rebuilt.jids WHERE jid = $1', [j2]);
    await w.db.query('DELETE FROM salt_events WHERE id = 999999');
    expect((await verify()).ok).toBe(true);
  });

  it('reports the first sequence where a stored chain value differs', async () => {
    const chain = await rows<{ seq: string; hash: string }>(w.db, 'SELECT seq::text, hash FROM projector_chain ORDER BY seq');
    const victim = chain[Math.floor(chain.length / 2)]!;
    await w.db.query('UPDATE projector_chain SET hash = $2 WHERE seq = $1', [victim.seq, 'f'.repeat(64)]);
    const r = await verify();
    expect(r.ok).toBe(false);
    expect(r.differenceCount).toBe(0);
    expect(r.chain.diverging).toBe(1);
    expect(r.chain.first).toEqual({ seq: Number(victim.seq), stored: 'f'.repeat(64), recomputed: victim.hash });
    await w.db.query('UPDATE projector_chain SET hash = $2 WHERE seq = $1', [victim.seq, victim.hash]);
    expect((await verify()).ok).toBe(true);
  });

  it('honours retention: removed and archived jobs, a late return cleaned again, deleted jobs', async () => {
    const old1 = jidAgo(3 * 86_400_000);
    const old2 = jidAgo(3 * 86_400_000);
    await job(old1, ['web1', 'web2']);
    await job(old2, ['db1']);
    await settled();
    const pass = (archive: boolean) => cleanOldJobs(w.db, { keepJobsSeconds: 86_400, archive, checkpoint: NAME });
    expect((await pass(true)).jobs).toBe(2);
    expect(await rows(w.db, 'SELECT jid FROM jobs WHERE jid IN ($1, $2)', [old1, old2])).toEqual([]);
    let r = await verify();
    expect(r.differences).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.removals).toBe(1);

    // a late return of a cleaned job: projected as a placeholder, then cleaned into the archive row
    await append(w.ledger, returned(old1, 'db1', 'late'));
    await settled();
    expect((await verify()).ok).toBe(true);
    await pass(true);
    expect(await rows(w.db, 'SELECT returned FROM jobs_archive WHERE jid = $1', [old1])).toEqual([{ returned: 3 }]);
    r = await verify();
    expect(r.differences).toEqual([]);

    // delete mode
    const old3 = jidAgo(3 * 86_400_000);
    await job(old3, ['web1']);
    await settled();
    expect((await pass(false)).jobs).toBe(1);
    r = await verify();
    expect(r.differences).toEqual([]);
    expect(r.ok).toBe(true);

    // a row removed without retention is still a difference
    await w.db.query('DELETE FROM salt_returns WHERE jid = $1', [jids[4]]);
    r = await verify();
    expect(r.differences.map(formatDifference)).toEqual([
      `salt_returns: jid ${jids[4]} id db1: missing`,
      `salt_returns: jid ${jids[4]} id web1: missing`,
      `salt_returns: jid ${jids[4]} id web2: missing`,
    ]);
    await w.db.query('INSERT INTO salt_returns SELECT * FROM rebuilt.salt_returns WHERE jid = $1', [jids[4]]);
  });

  it('does not believe a retention_log row retention could not have written', async () => {
    const victim = jids[5]!;
    const tagged = `salt/job/${victim}/%`;
    const restore = async () => {
      for (const t of ['jobs', 'jids', 'salt_returns', 'procs']) {
        await w.db.query(`INSERT INTO public.${t} SELECT * FROM rebuilt.${t} WHERE jid = $1`, [victim]);
      }
      await w.db.query('INSERT INTO public.salt_events SELECT * FROM rebuilt.salt_events WHERE tag LIKE $1', [tagged]);
    };
    const seq = await settled();
    // the job's rows deleted by hand, and a log row naming it, written "now" at the checkpoint
    const { rows: ev } = await w.db.query<{ id: string }>('DELETE FROM salt_events WHERE tag LIKE $1 RETURNING id::text', [tagged]);
    expect(ev.length).toBeGreaterThan(0);
    for (const t of ['jobs', 'jids', 'salt_returns', 'procs']) await w.db.query(`DELETE FROM ${t} WHERE jid = $1`, [victim]);
    await w.db.query(
      `INSERT INTO retention_log (name, seq, part, archived, jids, event_ids, removed_at) VALUES ($1, $2, 99, false, $3, $4::bigint[], now())`,
      [NAME, seq, [victim], ev.map((e) => e.id)],
    );
    let r = await verify();
    expect(r.ok).toBe(false);
    const lines = r.differences.map(formatDifference);
    expect(lines).toContain(`retention_log: seq ${seq}: jid ${victim} removed before it was old`);
    expect(lines.filter((l) => l.startsWith('retention_log:'))).toHaveLength(1 + ev.length);
    expect(lines).toContain(`retention_log: seq ${seq}: event ${ev[0]!.id} removed before it was old`);
    // the rows themselves match: the rebuild applied the forged removal too
    expect(lines.filter((l) => !l.startsWith('retention_log:'))).toEqual([]);

    // a removal dated before the message at its sequence was stored
    await w.db.query(`UPDATE retention_log SET removed_at = '2001-01-01T00:00:00Z', jids = '{}', event_ids = '{}' WHERE part = 99`);
    await restore();
    r = await verify();
    expect(r.differences.map(formatDifference)).toEqual([
      expect.stringMatching(
        new RegExp(`^retention_log: seq ${seq}: removed at 2001-01-01T00:00:00.000Z, before the message at its sequence was stored`),
      ),
    ]);
    await w.db.query('DELETE FROM retention_log WHERE part = 99');
    r = await verify();
    expect(r.differences).toEqual([]);
    // genuine removals are judged by the retention they ran with, whatever today's setting is
    const verifyWith = (keep: string) =>
      auditVerify({
        databaseUrl: w.databaseUrl,
        ledger: w.ledger,
        name: NAME,
        masterId: MASTER_ID,
        env: { JOBLEDGER_KEEP_JOBS_SECONDS: keep },
      });
    expect((await rows(w.db, 'SELECT DISTINCT keep_jobs_seconds FROM retention_log', [])).map((x) => x.keep_jobs_seconds)).toEqual([
      86_400,
    ]);
    const off = await verifyWith('0');
    expect(off.differences).toEqual([]);
    expect(off.ok).toBe(true);
    // rows recorded before the setting was kept fall back to today's: with retention off, none is believed
    await w.db.query('UPDATE retention_log SET keep_jobs_seconds = NULL');
    const legacy = await verifyWith('0');
    expect(legacy.ok).toBe(false);
    expect(legacy.differences.every((d) => d.kind === 'removal')).toBe(true);
    expect(legacy.differenceCount).toBe(r.removals);
    expect((await verifyWith('86400')).ok).toBe(true);
    await w.db.query('UPDATE retention_log SET keep_jobs_seconds = 86400');
  });

  it('stays exact while the projector keeps writing, and drops the scratch schemas of killed runs', async () => {
    const stale = `audit_${microsToJid(BigInt(Date.now() - 2 * 3_600_000) * 1000n)}`;
    const held = `audit_${microsToJid(BigInt(Date.now() - 3 * 3_600_000) * 1000n)}`;
    for (const s of [stale, held]) await w.db.query(`CREATE SCHEMA "${s}"; CREATE TABLE "${s}".t (x int)`);
    // a session of a run still going names its schema
    const { default: pgLib } = await import('pg');
    const running = new pgLib.Client({ connectionString: w.databaseUrl, application_name: `jobledger audit verify ${held}` });
    await running.connect();
    const before = await settled();
    let stop = false;
    const writing = (async () => {
      while (!stop) await job(newJid(), ['web1', 'db1']);
    })();
    try {
      await waitFor('the projector to move', async () => projector.appliedSeq() > before + 8);
      const r = await verify();
      expect(r.differences).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.seq).toBeGreaterThan(before);
    } finally {
      stop = true;
      await writing;
    }
    const left = await rows<{ nspname: string }>(w.db, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'audit_%' ORDER BY 1");
    expect(left).toEqual([{ nspname: held }]);
    await running.end();
    await w.db.query(`DROP SCHEMA "${held}" CASCADE`);
    await settled();
  });
});

describe('replay --swap', () => {
  it('replaces the live tables in one transaction while the projector keeps projecting', async () => {
    // the returner feeds' checkpoints, which are about the returners' targets, not the read models
    await w.db.query(
      `INSERT INTO public.projector_checkpoint (name, last_seq, updated_at) VALUES
       ('master_job_cache:local_cache', 7, '2026-11-26T00:00:00Z'), ('event_return:syslog', 3, '2026-11-26T00:00:01Z')`,
    );
    const feedRows = () =>
      rows(w.db, `SELECT name, last_seq::int AS s, updated_at, chain FROM public.projector_checkpoint WHERE name <> $1 ORDER BY name`, [
        NAME,
      ]);
    const feedsBefore = await feedRows();
    expect(feedsBefore).toHaveLength(2);
    // events keep coming while the replay runs
    const during = (async () => {
      for (let i = 0; i < 5; i++) await job(newJid(), ['web1']);
    })();
    const r = await replay({ databaseUrl: w.databaseUrl, ledger: w.ledger, name: NAME, masterId: MASTER_ID, swap: true, batch: 10 });
    await during;
    expect(r.schema).toBe('public');
    expect(r.retired).toMatch(/^public_before_\d{20}$/);
    // the feeds' checkpoints came along into the new live schema, unchanged
    expect(await feedRows()).toEqual(feedsBefore);
    // the old tables are kept
    expect((await rows<{ n: number }>(w.db, `SELECT count(*)::int AS n FROM "${r.retired}".jobs`))[0]!.n).toBeGreaterThan(10);
    // the projector goes on in the new tables
    const after = newJid();
    await job(after, ['web2']);
    const last = await settled();
    expect(await rows(w.db, 'SELECT jid, returned FROM public.jobs WHERE jid = $1', [after])).toEqual([{ jid: after, returned: 1 }]);
    expect(await rows(w.db, 'SELECT last_seq::int AS s FROM public.projector_checkpoint WHERE name = $1', [NAME])).toEqual([{ s: last }]);
    const v = await verify();
    expect(v.differences).toEqual([]);
    expect(v).toMatchObject({ ok: true, seq: last });
  });
});
