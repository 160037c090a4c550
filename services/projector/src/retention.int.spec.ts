// Given jobs projected with old and new jids, when a retention pass runs, then exactly the old
// jobs' rows have moved to the archive tables (or are gone). Real PostgreSQL (a fresh
// database per test); the last tests run the projector itself on a nats-server of their own.

import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeEvent, microsToJid, type LedgerEvent } from '@jobledger/core';
import { migrateDatabase } from '@jobledger/runtime';
import { freshDatabase } from '../../../test/support/servers.js';
import { applyBatch } from './apply.js';
import { startProjector } from './projector.js';
import { cleanOldJobs, loadRetentionConfig, tagJid } from './retention.js';
import {
  addressOf,
  agentStarted,
  append,
  MASTER_ID,
  procEnded,
  procStarted,
  published,
  quietLogger,
  returned,
  rows,
  waitFor,
  world,
  type World,
} from '../test/support.js';

const DAY_MS = 86_400_000;
const KEEP = 86_400;
let micro = 0n;
/** A jid `agoMs` milliseconds ago, unique within the file. */
const jidAgo = (agoMs: number): string => microsToJid(BigInt(Date.now() - agoMs) * 1000n + micro++);

/** Tables whose rows retention moves, with their archive twins. */
const TABLES = {
  jobs: 'SELECT * FROM jobs ORDER BY jid',
  jids: 'SELECT * FROM jids ORDER BY jid',
  salt_returns: 'SELECT * FROM salt_returns ORDER BY jid, id',
  salt_events: 'SELECT * FROM salt_events ORDER BY id',
  procs: 'SELECT * FROM procs ORDER BY jid, id',
  jobs_archive: 'SELECT * FROM jobs_archive ORDER BY jid',
  jids_archive: 'SELECT * FROM jids_archive ORDER BY jid',
  salt_returns_archive: 'SELECT * FROM salt_returns_archive ORDER BY jid, id',
  salt_events_archive: 'SELECT * FROM salt_events_archive ORDER BY id',
} as const;

async function tables(db: pg.Pool): Promise<Record<keyof typeof TABLES, Record<string, unknown>[]>> {
  const out = {} as Record<keyof typeof TABLES, Record<string, unknown>[]>;
  for (const [name, sql] of Object.entries(TABLES)) out[name as keyof typeof TABLES] = await rows(db, sql);
  return out;
}

describe('cleanOldJobs on the read models', () => {
  let url: string;
  let db: pg.Pool;
  let seq = 0;

  beforeEach(async () => {
    url = await freshDatabase('retention');
    await migrateDatabase(url);
    db = new pg.Pool({ connectionString: url, max: 3 });
    seq = 0;
  });
  afterEach(async () => {
    await db.end();
  });

  /** Projects events as the projector does, as if stored `ageMs` ago (their salt_events/salt_returns alter_time). */
  async function project(ageMs: number, ...events: LedgerEvent[]): Promise<number[]> {
    const first = seq + 1;
    const messages = events.map((ev) => ({ seq: ++seq, subject: addressOf(ev).subject, data: encodeEvent(ev), time: new Date() }));
    await applyBatch(db, messages, {
      name: 'projector',
      masterId: MASTER_ID,
      maxFill: 1000,
      fetchMissing: async () => [],
      streamFirstSeq: async () => 1,
    });
    const at = new Date(Date.now() - ageMs);
    await db.query('UPDATE salt_events SET alter_time = $1 WHERE id >= $2', [at, first]);
    const jids = [...new Set(events.flatMap((e) => ('jid' in e.data ? [e.data.jid] : [])))];
    await db.query('UPDATE salt_returns SET alter_time = $1 WHERE jid = ANY($2)', [at, jids]);
    return messages.map((m) => m.seq);
  }

  /** A job with two agents: published, one proc and two returns. */
  const fullJob = (jid: string, ids = ['a', 'b']): LedgerEvent[] => [
    published(jid, { minions: ids }),
    ...ids.flatMap((id, i) => [procStarted(jid, id, 100 + i), returned(jid, id, true), procEnded(jid, id, 100 + i)]),
  ];

  /**
   * Old: a full job A, a job B with no returns (its agent never answered), an old minion_start,
   * a runner job R whose events came late (young alter_time). Young: job C, a minion_start.
   */
  async function seed() {
    const A = jidAgo(2 * DAY_MS);
    const B = jidAgo(2 * DAY_MS - 1000);
    const R = jidAgo(2 * DAY_MS - 2000);
    const C = jidAgo(3_600_000);
    await project(2 * DAY_MS, ...fullJob(A), published(B, { minions: ['c'] }), procStarted(B, 'c', 7), agentStarted('a'));
    await project(0, ...fullJob(C, ['a']), agentStarted('b'));
    // A runner job (its projection is not this test's): a jobs row and salt/run events carrying the jid.
    await db.query(
      `INSERT INTO jobs (jid, fun, arg, tgt, tgt_type, "user", minions, missing, expected, start_time, published_seq)
       VALUES ($1, 'runner.test.arg', '[]', '"master_master"', 'glob', 'root', '[]', '[]', 0, $2, 100)`,
      [R, new Date(Date.now() - 2 * DAY_MS + 2000)],
    );
    await db.query(
      `INSERT INTO salt_events (id, tag, data, master_id) VALUES
         (100, $2, jsonb_build_object('jid', $1::text, 'fun', 'runner.test.arg'), 'm'),
         (101, $3, jsonb_build_object('jid', $1::text, 'return', 'x'), 'm')`,
      [R, `salt/run/${R}/new`, `salt/run/${R}/ret`],
    );
    return { A, B, C, R };
  }

  it('archive: moves every row of the jobs older than keep_jobs_seconds, a job without returns and events of no job included', async () => {
    const { A, B, C, R } = await seed();
    const before = await tables(db);

    const r = await cleanOldJobs(db, { keepJobsSeconds: KEEP, archive: true });

    expect(r).toMatchObject({ archived: true, jobs: 3, jids: 2, returns: 2, events: 12, procs: 3, complete: true });
    expect(Math.abs(r.cutoff.getTime() - (Date.now() - KEEP * 1000))).toBeLessThan(5_000);
    const after = await tables(db);
    const old = new Set([A, B, R]);
    const isOld = (row: Record<string, unknown>) => old.has(row.jid as string);
    // What stays: job C and the young minion_start, unchanged.
    expect(after.jobs).toEqual(before.jobs.filter((x) => !isOld(x)));
    expect(after.jobs.map((x) => x.jid)).toEqual([C]);
    expect(after.jids).toEqual(before.jids.filter((x) => !isOld(x)));
    expect(after.salt_returns).toEqual(before.salt_returns.filter((x) => !isOld(x)));
    expect(after.procs).toEqual(before.procs.filter((x) => !isOld(x)));
    expect(after.procs.map((x) => x.jid)).toEqual([C]);
    expect(after.salt_events.map((e) => e.tag)).toEqual([
      `salt/job/${C}/new`,
      `salt/job/${C}/proc/a/started`,
      `salt/job/${C}/ret/a`,
      `salt/job/${C}/proc/a/ended`,
      'minion_start',
    ]);
    // What moved: the very rows, column for column.
    expect(after.jobs_archive).toEqual(before.jobs.filter(isOld));
    expect(after.jids_archive).toEqual(before.jids.filter(isOld));
    expect(after.salt_returns_archive).toEqual(before.salt_returns.filter(isOld));
    const movedEvents = before.salt_events.filter((e) => !after.salt_events.some((k) => k.id === e.id));
    expect(after.salt_events_archive).toEqual(movedEvents);
    expect(movedEvents.map((e) => e.tag)).toEqual([
      `salt/job/${A}/new`,
      `salt/job/${A}/proc/a/started`,
      `salt/job/${A}/ret/a`,
      `salt/job/${A}/proc/a/ended`,
      `salt/job/${A}/proc/b/started`,
      `salt/job/${A}/ret/b`,
      `salt/job/${A}/proc/b/ended`,
      `salt/job/${B}/new`,
      `salt/job/${B}/proc/c/started`,
      'minion_start',
      `salt/run/${R}/new`,
      `salt/run/${R}/ret`,
    ]);
    expect(after.jobs_archive.find((x) => x.jid === B)).toMatchObject({ returned: 0, expected: 1 });
  });

  it('delete: the same rows are gone and nothing is archived', async () => {
    const { C } = await seed();
    const before = await tables(db);

    const r = await cleanOldJobs(db, { keepJobsSeconds: KEEP, archive: false });

    expect(r).toMatchObject({ archived: false, jobs: 3, jids: 2, returns: 2, events: 12, procs: 3 });
    const after = await tables(db);
    expect(after.jobs.map((x) => x.jid)).toEqual([C]);
    expect(after.jids).toEqual(before.jids.filter((x) => x.jid === C));
    expect(after.salt_returns).toEqual(before.salt_returns.filter((x) => x.jid === C));
    expect(after.procs).toEqual(before.procs.filter((x) => x.jid === C));
    expect(after.salt_events.map((e) => tagJid(e.tag as string) ?? e.tag)).toEqual([C, C, C, C, 'minion_start']);
    for (const t of ['jobs_archive', 'jids_archive', 'salt_returns_archive', 'salt_events_archive'] as const) expect(after[t]).toEqual([]);
  });

  it('a second pass changes nothing', async () => {
    await seed();
    await cleanOldJobs(db, { keepJobsSeconds: KEEP, archive: true });
    const once = await tables(db);

    const again = await cleanOldJobs(db, { keepJobsSeconds: KEEP, archive: true });

    expect(again).toMatchObject({ jobs: 0, jids: 0, returns: 0, events: 0, procs: 0, transactions: 0 });
    expect(await tables(db)).toEqual(once);
  });

  it.each([
    [7, 3, 3],
    [6, 3, 2],
    [2, 3, 1],
  ])('%i old jobs with batch %i take %i transactions, and every one is cleaned', async (n, batch, txs) => {
    const old = Array.from({ length: n }, (_, i) => jidAgo(2 * DAY_MS - i));
    await project(2 * DAY_MS, ...old.flatMap((jid) => [published(jid, { minions: ['a'] }), returned(jid, 'a', 1)]));
    const young = jidAgo(1000);
    await project(0, published(young, { minions: ['a'] }), returned(young, 'a', 1));

    const r = await cleanOldJobs(db, { keepJobsSeconds: KEEP, archive: true, batch });

    expect(r).toMatchObject({ jobs: n, jids: n, returns: n, events: 2 * n, transactions: txs });
    expect(await rows(db, 'SELECT jid FROM jobs')).toEqual([{ jid: young }]);
    expect(await rows(db, 'SELECT jid FROM jobs_archive ORDER BY jid')).toEqual(old.map((jid) => ({ jid })));
  });

  it('events of no job go by alter_time, in batches, and stop at the first young one', async () => {
    await project(2 * DAY_MS, ...['a', 'b', 'c', 'd'].map((id) => agentStarted(id)));
    await project(0, agentStarted('e'));

    const r = await cleanOldJobs(db, { keepJobsSeconds: KEEP, archive: false, batch: 3 });

    expect(r).toMatchObject({ jobs: 0, events: 4, transactions: 2 });
    expect(await rows(db, "SELECT data->>'id' AS id FROM salt_events")).toEqual([{ id: 'e' }]);
    // agents is not a job table: kept
    expect(await rows(db, 'SELECT count(*)::int AS n FROM agents')).toEqual([{ n: 5 }]);
  });

  it('events projected between the lookups and the transaction are cleaned with their job', async () => {
    const A = jidAgo(2 * DAY_MS);
    await project(2 * DAY_MS, published(A, { minions: ['a', 'b'] }), returned(A, 'a', true));
    let raced = false;

    const r = await cleanOldJobs(db, {
      keepJobsSeconds: KEEP,
      archive: true,
      beforeTransaction: async () => {
        if (raced) return;
        raced = true;
        await project(0, returned(A, 'b', false, { success: false, retcode: 1 }), procEnded(A, 'b', 9), agentStarted('b'));
      },
    });

    expect(r).toMatchObject({ jobs: 1, jids: 1, returns: 2, events: 4, procs: 1 });
    expect(await rows(db, 'SELECT jid, returned, failed FROM jobs_archive')).toEqual([{ jid: A, returned: 2, failed: 1 }]);
    expect(await rows(db, 'SELECT tag FROM salt_events')).toEqual([{ tag: 'minion_start' }]);
    for (const t of ['jobs', 'jids', 'salt_returns', 'procs']) expect(await rows(db, `SELECT * FROM ${t}`)).toEqual([]);
  });

  it('a return stored after its job was archived is archived by the next pass, into the same jobs_archive row', async () => {
    const A = jidAgo(2 * DAY_MS);
    await project(2 * DAY_MS, published(A, { minions: ['a', 'b'] }), returned(A, 'a', true));
    await cleanOldJobs(db, { keepJobsSeconds: KEEP, archive: true });

    // b answers late: the projector makes a placeholder jobs row and the return
    await project(0, returned(A, 'b', false, { success: false, retcode: 1 }), procEnded(A, 'b', 9));
    expect(await rows(db, 'SELECT jid, returned, published_seq FROM jobs')).toEqual([{ jid: A, returned: 1, published_seq: null }]);

    const r = await cleanOldJobs(db, { keepJobsSeconds: KEEP, archive: true });

    expect(r).toMatchObject({ jobs: 1, returns: 1, events: 2, procs: 1 });
    expect(await rows(db, 'SELECT jid, returned, failed, expected, published_seq FROM jobs_archive')).toEqual([
      { jid: A, returned: 2, failed: 1, expected: 2, published_seq: '1' },
    ]);
    expect(await rows(db, 'SELECT id FROM salt_returns_archive ORDER BY id')).toEqual([{ id: 'a' }, { id: 'b' }]);
    for (const t of ['jobs', 'salt_returns', 'salt_events', 'procs']) expect(await rows(db, `SELECT * FROM ${t}`)).toEqual([]);
  });
});

describe('the projector applies retention every loop interval', () => {
  let w: World;
  beforeEach(async () => {
    w = await world('retention');
  });
  afterEach(async () => {
    await w.close();
  });

  it('archives a job older than keep_jobs_seconds while projecting, and again when a late return arrives', async () => {
    const old = jidAgo(2 * DAY_MS);
    const young = jidAgo(0);
    await append(w.ledger, published(old, { minions: ['a', 'b'] }), returned(old, 'a', true), published(young, { minions: ['a'] }));
    const retention = loadRetentionConfig({
      JOBLEDGER_KEEP_JOBS_SECONDS: '3600',
      JOBLEDGER_ARCHIVE_JOBS: 'true',
      JOBLEDGER_LOOP_INTERVAL: '0.1',
    });
    const p = await startProjector(w.config({ retention }), quietLogger());
    try {
      await waitFor('the old job archived', async () => (await rows(w.db, 'SELECT 1 FROM jobs_archive')).length === 1);
      expect(await rows(w.db, 'SELECT jid FROM jobs')).toEqual([{ jid: young }]);

      await append(w.ledger, returned(old, 'b', true), agentStarted('a'));
      await waitFor('the late return archived', async () => (await rows(w.db, 'SELECT 1 FROM salt_returns_archive')).length === 2);
      await waitFor('its placeholder merged', async () => (await rows(w.db, 'SELECT 1 FROM jobs WHERE jid = $1', [old])).length === 0);
      expect(await rows(w.db, 'SELECT jid, returned FROM jobs_archive')).toEqual([{ jid: old, returned: 2 }]);
      expect(await rows(w.db, 'SELECT tag FROM salt_events ORDER BY id')).toEqual([
        { tag: `salt/job/${young}/new` },
        { tag: 'minion_start' },
      ]);
    } finally {
      await p.stop();
    }
  });

  it('projection and retention running together leave every old job whole in the archive', async () => {
    const retention = loadRetentionConfig({
      JOBLEDGER_KEEP_JOBS_SECONDS: '3600',
      JOBLEDGER_ARCHIVE_JOBS: 'yes',
      JOBLEDGER_LOOP_INTERVAL: '0.02',
    });
    const p = await startProjector(w.config({ retention, batch: 50 }), quietLogger());
    const jids = Array.from({ length: 150 }, (_, i) => jidAgo(2 * DAY_MS - i));
    try {
      // returns trail their publications, so many arrive after their job was archived
      for (let i = 0; i < jids.length; i += 10) {
        const chunk = jids.slice(i, i + 10);
        await append(
          w.ledger,
          ...chunk.map((jid) => published(jid, { minions: ['a', 'b'] })),
          ...chunk.map((jid) => returned(jid, 'a', 1)),
        );
        if (i >= 20) await append(w.ledger, ...jids.slice(i - 20, i - 10).map((jid) => returned(jid, 'b', 2)));
      }
      await append(w.ledger, ...jids.slice(-20).map((jid) => returned(jid, 'b', 2)));
      await waitFor(
        'every return archived',
        async () =>
          (await rows(w.db, 'SELECT 1 FROM salt_returns_archive')).length === 300 && (await rows(w.db, 'SELECT 1 FROM jobs')).length === 0,
      );
    } finally {
      await p.stop();
    }
    expect(
      await rows(w.db, 'SELECT count(*)::int AS n, count(DISTINCT jid)::int AS jids, sum(returned)::int AS returned FROM jobs_archive'),
    ).toEqual([{ n: 150, jids: 150, returned: 300 }]);
    expect(await rows(w.db, 'SELECT count(*)::int AS n FROM salt_events_archive')).toEqual([{ n: 450 }]);
    for (const t of ['jobs', 'jids', 'salt_returns', 'salt_events', 'procs']) expect(await rows(w.db, `SELECT * FROM ${t}`)).toEqual([]);
  });
});
