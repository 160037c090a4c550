// Given events on the ledger stream, when the projector has run, then these rows. Real
// nats-server (one per test) and PostgreSQL (a fresh database per test), no mocks.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jidToDate } from '@jobledger/core';
import { migrateDatabase } from '@jobledger/runtime';
import { applyBatch, type ApplyOptions } from './apply.js';
import { publishLoad } from './projections.js';
import { startProjector, streamReader } from './projector.js';
import {
  agentStarted,
  append,
  appendRaw,
  lastSeq,
  MASTER_ID,
  newJid,
  procEnded,
  procSignalled,
  procStarted,
  published,
  quietLogger,
  readStream,
  returned,
  rows,
  snapshot,
  waitFor,
  world,
  type World,
} from '../test/support.js';

let w: World;
beforeEach(async () => {
  w = await world('projector');
});
afterEach(async () => {
  await w.close();
});

/** Runs the projector until it has applied everything on the stream, then stops it. */
async function project(overrides: Parameters<World['config']>[0] = {}): Promise<void> {
  const p = await startProjector(w.config(overrides), quietLogger());
  try {
    const last = await lastSeq(w.ledger);
    await waitFor(`checkpoint ${last}`, () => p.appliedSeq() >= last);
  } finally {
    await p.stop();
  }
}

const ackPending = async () => (await w.ledger.jsm.consumers.info(w.ledger.stream, 'projector')).num_ack_pending;

describe('job.published and job.returned', () => {
  it('writes jids, salt_returns, salt_events and the jobs row', async () => {
    // given
    const jid = newJid();
    const pub = published(jid, {
      tgt: ['web1', 'web2', 'db9'],
      tgt_type: 'list',
      fun: 'cmd.run',
      arg: ['uptime', { cwd: '/tmp', __kwarg__: true }],
      minions: ['web1', 'web2'],
      missing: ['db9'],
      metadata: { ticket: 'OPS-1' },
    });
    const r1 = returned(jid, 'web1', 'up 3 days', { fun: 'cmd.run', fun_args: ['uptime', { cwd: '/tmp' }] });
    const r2 = returned(jid, 'web2', 'command not found', {
      fun: 'cmd.run',
      fun_args: ['uptime'],
      retcode: 127,
      success: false,
      out: 'txt',
    });
    const seqs = await append(w.ledger, pub, r1, r2);

    // when
    await project();

    // then: jids holds Salt's publish load, never a return load
    expect(await rows(w.db, 'SELECT jid, load FROM jids')).toEqual([
      {
        jid,
        load: {
          cmd: 'publish',
          tgt: ['web1', 'web2', 'db9'],
          fun: 'cmd.run',
          arg: ['uptime', { cwd: '/tmp', __kwarg__: true }],
          tgt_type: 'list',
          ret: '',
          jid,
          user: 'root',
          minions: ['web1', 'web2'],
          missing: ['db9'],
          metadata: { ticket: 'OPS-1' },
        },
      },
    ]);

    // salt_returns: success as text, return as JSON, full_ret the whole return load
    const returns = await rows(
      w.db,
      `SELECT fun, jid, "return", jsonb_typeof("return") AS return_type, id, success, full_ret, alter_time IS NOT NULL AS has_time
       FROM salt_returns ORDER BY id`,
    );
    expect(returns).toEqual([
      { fun: 'cmd.run', jid, return: 'up 3 days', return_type: 'string', id: 'web1', success: 'true', full_ret: r1.data, has_time: true },
      {
        fun: 'cmd.run',
        jid,
        return: 'command not found',
        return_type: 'string',
        id: 'web2',
        success: 'false',
        full_ret: r2.data,
        has_time: true,
      },
    ]);

    // salt_events: one row per event, id = stream sequence
    expect(await rows(w.db, 'SELECT id, tag, data, master_id FROM salt_events ORDER BY id')).toEqual([
      { id: String(seqs[0]), tag: `salt/job/${jid}/new`, data: pub.data, master_id: MASTER_ID },
      { id: String(seqs[1]), tag: `salt/job/${jid}/ret/web1`, data: r1.data, master_id: MASTER_ID },
      { id: String(seqs[2]), tag: `salt/job/${jid}/ret/web2`, data: r2.data, master_id: MASTER_ID },
    ]);

    // jobs: counts and times
    const [retTime] = (await readStream(w.ledger, seqs[2]!, seqs[2]!)).map((m) => m.time);
    expect(await rows(w.db, 'SELECT * FROM jobs')).toEqual([
      {
        jid,
        fun: 'cmd.run',
        arg: ['uptime', { cwd: '/tmp', __kwarg__: true }],
        tgt: ['web1', 'web2', 'db9'],
        tgt_type: 'list',
        user: 'root',
        metadata: { ticket: 'OPS-1' },
        minions: ['web1', 'web2'],
        missing: ['db9'],
        expected: 3,
        returned: 2,
        failed: 1,
        start_time: jidToDate(jid),
        end_time: retTime,
        published_seq: String(seqs[0]),
      },
    ]);
    expect(await rows(w.db, 'SELECT name, last_seq FROM projector_checkpoint')).toEqual([{ name: 'projector', last_seq: String(seqs[2]) }]);
    expect(await ackPending()).toBe(0);
  });

  it('stores every JSON return exactly (strings stay strings, true stays true, null stays null)', async () => {
    const jid = newJid();
    const values: Record<string, unknown> = {
      s: 'true',
      n: 42.5,
      t: true,
      f: false,
      z: null,
      a: [1, 'two', [3], { four: 4 }],
      o: { nested: { list: [], empty: {}, nothing: null }, 'key with spaces': '✓ ünïcode' },
      e: '',
      q: 'a "quoted" \\ string\nwith newline',
    };
    const ids = Object.keys(values);
    await append(w.ledger, published(jid, { minions: ids }), ...ids.map((id) => returned(jid, id, values[id])));

    await project();

    for (const id of ids) {
      const [row] = await rows<{ exact: boolean; ret: unknown; full: boolean }>(
        w.db,
        `SELECT "return" = $2::jsonb AS exact, "return" AS ret, full_ret->'return' = $2::jsonb AS full
         FROM salt_returns WHERE jid = $1 AND id = $3`,
        [jid, JSON.stringify(values[id]), id],
      );
      expect({ id, ...row }).toEqual({ id, exact: true, ret: values[id], full: true });
    }
    const [types] = await rows(w.db, `SELECT jsonb_object_agg(id, jsonb_typeof("return")) AS t FROM salt_returns`);
    expect(types).toEqual({
      t: { s: 'string', n: 'number', t: 'boolean', f: 'boolean', z: 'null', a: 'array', o: 'object', e: 'string', q: 'string' },
    });
  });

  it('counts a return with success true but a non-zero retcode as failed, and keeps a second return of the same id as a second row', async () => {
    const jid = newJid();
    await append(w.ledger, published(jid, { minions: ['a', 'b'] }), returned(jid, 'a', 1, { retcode: 2 }), returned(jid, 'b', 'ok'));
    // The same id returning again (no msg id: the dedupe window would drop a same-id retry).
    await appendRaw(w.ledger, `ledger.job.${jid}.ret.a`, JSON.stringify(returned(jid, 'a', 'again')));

    await project();

    expect(await rows(w.db, 'SELECT expected, returned, failed FROM jobs WHERE jid = $1', [jid])).toEqual([
      { expected: 2, returned: 3, failed: 1 },
    ]);
    expect(await rows(w.db, 'SELECT id, "return" FROM salt_returns ORDER BY id, "return"::text')).toEqual([
      { id: 'a', return: 'again' },
      { id: 'a', return: 1 },
      { id: 'b', return: 'ok' },
    ]);
  });

  it('a return that comes before its publication makes a placeholder job row, which the publication fills in', async () => {
    // given a return alone
    const jid = newJid();
    const early = returned(jid, 'a', 'early', { fun: 'test.echo', fun_args: ['early'], retcode: 1 });
    await append(w.ledger, early);
    await project();
    expect(
      await rows(
        w.db,
        'SELECT fun, arg, tgt, tgt_type, "user", minions, missing, expected, returned, failed, start_time, published_seq FROM jobs',
      ),
    ).toEqual([
      {
        fun: 'test.echo',
        arg: ['early'],
        tgt: [],
        tgt_type: 'list',
        user: 'root',
        minions: [],
        missing: [],
        expected: 0,
        returned: 1,
        failed: 1,
        start_time: jidToDate(jid),
        published_seq: null,
      },
    ]);
    expect(await rows(w.db, 'SELECT count(*)::int AS n FROM jids')).toEqual([{ n: 0 }]);

    // when its publication and a second return follow
    const pub = published(jid, { fun: 'test.echo', arg: ['early'], minions: ['a', 'b'], tgt: 'a,b', tgt_type: 'list' });
    const [pubSeq] = await append(w.ledger, pub, returned(jid, 'b', 'late', { fun: 'test.echo' }));
    await project();

    // then the publication's fields fill the row; the counts add up
    expect(await rows(w.db, 'SELECT fun, tgt, tgt_type, minions, expected, returned, failed, published_seq FROM jobs')).toEqual([
      {
        fun: 'test.echo',
        tgt: 'a,b',
        tgt_type: 'list',
        minions: ['a', 'b'],
        expected: 2,
        returned: 2,
        failed: 1,
        published_seq: String(pubSeq),
      },
    ]);
    expect(await rows(w.db, 'SELECT load FROM jids')).toEqual([{ load: publishLoad(pub.data) }]);
  });

  it('gives the same rows whether the return comes before or after the publication in one batch', async () => {
    const [j1, j2] = [newJid(), newJid()];
    await append(
      w.ledger,
      returned(j2, 'a', 'x'),
      published(j1, { minions: ['a'] }),
      published(j2, { minions: ['a'] }),
      returned(j1, 'a', 'x'),
    );
    await project();
    const jobs = await rows<Record<string, unknown>>(
      w.db,
      'SELECT jid, fun, tgt, minions, expected, returned, failed FROM jobs ORDER BY jid',
    );
    expect(jobs).toEqual([
      { jid: j1, fun: 'test.ping', tgt: '*', minions: ['a'], expected: 1, returned: 1, failed: 0 },
      { jid: j2, fun: 'test.ping', tgt: '*', minions: ['a'], expected: 1, returned: 1, failed: 0 },
    ]);
  });
});

describe('procs and agents', () => {
  it('follows a process from started to ended, and never moves a state backwards', async () => {
    const jid = newJid();
    const seqs = await append(
      w.ledger,
      procStarted(jid, 'a', 4242),
      procSignalled(jid, 'a', 4242, 15),
      procEnded(jid, 'a', 4242, { outcome: 'signalled', signal: 15 }),
      procStarted(jid, 'b', 77, 'test.echo'),
      procEnded(jid, 'b', 77, { outcome: 'returned', retcode: 0 }, 'test.echo'),
      // c: the end arrives before the start
      procEnded(jid, 'c', 9, { outcome: 'lost' }),
      procStarted(jid, 'c', 9),
      procStarted(jid, 'd', 10),
    );
    await project({ batch: 3 });

    const times = new Map((await readStream(w.ledger, seqs[0]!, seqs[seqs.length - 1]!)).map((m) => [m.seq, m.time]));
    const t = (i: number) => times.get(seqs[i]!);
    expect(await rows(w.db, 'SELECT * FROM procs ORDER BY id')).toEqual([
      {
        jid,
        id: 'a',
        fun: 'test.sleep',
        pid: 4242,
        state: 'ended',
        outcome: 'signalled',
        signal: 15,
        retcode: null,
        started_at: t(0),
        ended_at: t(2),
      },
      {
        jid,
        id: 'b',
        fun: 'test.echo',
        pid: 77,
        state: 'ended',
        outcome: 'returned',
        signal: null,
        retcode: 0,
        started_at: t(3),
        ended_at: t(4),
      },
      {
        jid,
        id: 'c',
        fun: 'test.sleep',
        pid: 9,
        state: 'ended',
        outcome: 'lost',
        signal: null,
        retcode: null,
        started_at: t(6),
        ended_at: t(5),
      },
      {
        jid,
        id: 'd',
        fun: 'test.sleep',
        pid: 10,
        state: 'running',
        outcome: null,
        signal: null,
        retcode: null,
        started_at: t(7),
        ended_at: null,
      },
    ]);
  });

  it('keeps first_seen, moves last_seen and counts starts of every agent', async () => {
    const seqs = await append(
      w.ledger,
      agentStarted('web1', { version: '0.1.0', grains: { os: 'Debian', cpus: 2 } }),
      agentStarted('192.168.1.7'),
      agentStarted('web1', { version: '0.2.0', grains: { os: 'Debian', cpus: 4 } }),
    );
    await project({ batch: 2 });
    await append(w.ledger, agentStarted('web1'));
    await project();

    const all = await readStream(w.ledger, 1, await lastSeq(w.ledger));
    const time = (seq: number) => all.find((m) => m.seq === seq)!.time;
    expect(await rows(w.db, 'SELECT * FROM agents ORDER BY id')).toEqual([
      { id: '192.168.1.7', first_seen: time(seqs[1]!), last_seen: time(seqs[1]!), version: null, grains: null, starts: 1 },
      // the last start reported no version or grains: the known ones stay
      {
        id: 'web1',
        first_seen: time(seqs[0]!),
        last_seen: all[all.length - 1]!.time,
        version: '0.2.0',
        grains: { os: 'Debian', cpus: 4 },
        starts: 3,
      },
    ]);
    expect(await rows(w.db, 'SELECT count(*)::int AS n FROM agents WHERE grains IS NULL')).toEqual([{ n: 1 }]); // SQL NULL, not JSON null
    expect(await rows(w.db, 'SELECT count(*)::int AS n, min(tag) AS tag FROM salt_events')).toEqual([{ n: 4, tag: 'minion_start' }]);
  });
});

describe('delivery', () => {
  const applyOpts = (): ApplyOptions => ({ name: 'projector', masterId: MASTER_ID, maxFill: 1000, ...streamReader(w.ledger) });

  it('applying the same messages twice gives identical rows', async () => {
    await migrateDatabase(w.databaseUrl);
    const jid = newJid();
    await append(
      w.ledger,
      published(jid, { minions: ['a', 'b'] }),
      returned(jid, 'a', { x: 1 }),
      procStarted(jid, 'b', 5),
      agentStarted('a'),
      returned(jid, 'b', false, { success: false, retcode: 1 }),
      procEnded(jid, 'b', 5),
    );
    await appendRaw(w.ledger, `ledger.job.${jid}.ret.zz`, 'poison');
    const messages = await readStream(w.ledger, 1, await lastSeq(w.ledger));

    const first = await applyBatch(w.db, messages, applyOpts());
    const once = await snapshot(w.db);
    const second = await applyBatch(w.db, messages, applyOpts());
    // a redelivery mixed with a duplicate inside one batch
    const third = await applyBatch(w.db, [...messages.slice(2), ...messages.slice(0, 4)], applyOpts());

    expect(first).toMatchObject({ applied: 7, skipped: 0, lastSeq: 7 });
    expect(second).toMatchObject({ applied: 0, skipped: 7, lastSeq: 7 });
    expect(third).toMatchObject({ applied: 0, skipped: 9, lastSeq: 7 });
    expect(await snapshot(w.db)).toEqual(once);
    expect(once.salt_returns).toHaveLength(2);
    expect(once.jobs).toMatchObject([{ returned: 2, failed: 1 }]);
    expect(once.dead_letters).toHaveLength(1);
  });

  it('fills a gap before the delivered messages from the stream, so no event is skipped', async () => {
    await migrateDatabase(w.databaseUrl);
    const jid = newJid();
    await append(w.ledger, published(jid, { minions: ['a', 'b', 'c', 'd'] }), ...['a', 'b', 'c', 'd'].map((id) => returned(jid, id, id)));
    const all = await readStream(w.ledger, 1, 5);

    // 1-2 applied, 3-4 delivered to a process that died; 5 is delivered first after the restart
    await applyBatch(w.db, all.slice(0, 2), applyOpts());
    const r = await applyBatch(w.db, all.slice(4), applyOpts());
    expect(r).toMatchObject({ applied: 3, filled: 2, missing: 0, lastSeq: 5, complete: true });
    // the redelivery of 3-4 changes nothing
    expect(await applyBatch(w.db, all.slice(2, 4), applyOpts())).toMatchObject({ applied: 0, skipped: 2 });

    expect(await rows(w.db, 'SELECT id FROM salt_returns ORDER BY id')).toEqual(['a', 'b', 'c', 'd'].map((id) => ({ id })));
    expect(await rows(w.db, 'SELECT returned FROM jobs')).toEqual([{ returned: 4 }]);
  });

  it('fills a gap larger than maxFill over several transactions', async () => {
    await migrateDatabase(w.databaseUrl);
    const jid = newJid();
    const ids = Array.from({ length: 25 }, (_, i) => `m${i}`);
    await append(w.ledger, published(jid, { minions: ids }), ...ids.map((id) => returned(jid, id, id)));
    const [lastMsg] = await readStream(w.ledger, 26, 26);
    const opts = { ...applyOpts(), maxFill: 10 };
    const results = [];
    for (;;) {
      const r = await applyBatch(w.db, [lastMsg!], opts);
      results.push(r);
      if (r.complete) break;
    }
    expect(results.map((r) => [r.applied, r.lastSeq, r.complete])).toEqual([
      [10, 10, false],
      [10, 20, false],
      [6, 26, true],
    ]);
    expect(await rows(w.db, 'SELECT returned FROM jobs')).toEqual([{ returned: 25 }]);
  });

  it('resumes from the checkpoint after a restart', async () => {
    const jid = newJid();
    await append(w.ledger, published(jid, { minions: ['a', 'b'] }), returned(jid, 'a', 1));
    await project();
    await append(w.ledger, returned(jid, 'b', 2));
    await project();
    expect(await rows(w.db, 'SELECT returned FROM jobs')).toEqual([{ returned: 2 }]);
    expect(await rows(w.db, 'SELECT count(*)::int AS n FROM salt_events')).toEqual([{ n: 3 }]);
  });

  it('stops in the middle of a burst with the read models matching the checkpoint, and a restart completes it', async () => {
    const jid = newJid();
    const ids = Array.from({ length: 3000 }, (_, i) => `m${i}`);
    await append(w.ledger, published(jid, { minions: ids }));
    const p = await startProjector(w.config({ batch: 200 }), quietLogger());
    const burst = Promise.all(ids.map((id) => append(w.ledger, returned(jid, id, id))));
    await waitFor('some returns', () => p.appliedSeq() > 100);
    await p.stop();
    const stoppedAt = p.appliedSeq();
    await burst;

    // everything up to the checkpoint, nothing after it
    expect(await rows(w.db, 'SELECT count(*)::int AS n, max(id)::int AS hi FROM salt_events')).toEqual([{ n: stoppedAt, hi: stoppedAt }]);
    expect(await rows(w.db, 'SELECT last_seq::int AS last FROM projector_checkpoint')).toEqual([{ last: stoppedAt }]);
    expect(await rows(w.db, 'SELECT returned FROM jobs')).toEqual([{ returned: stoppedAt - 1 }]);

    await project();
    expect(await rows(w.db, 'SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM salt_returns')).toEqual([
      { n: 3000, ids: 3000 },
    ]);
    expect(await rows(w.db, 'SELECT returned FROM jobs')).toEqual([{ returned: 3000 }]);
  });

  it('rolls back on a database error, acknowledges nothing, and retries until it commits', async () => {
    const jid = newJid();
    await append(w.ledger, published(jid, { minions: ['a'] }));
    await project();
    // break the database for the next batch
    await w.db.query('ALTER TABLE salt_returns RENAME TO salt_returns_away');
    const p = await startProjector(w.config(), quietLogger());
    try {
      await append(w.ledger, returned(jid, 'a', 'hi'), agentStarted('a'));
      // the batch is tried (and nak'ed) at least twice; nothing of it is committed
      await waitFor(
        'redelivery',
        async () => (await w.ledger.jsm.consumers.info(w.ledger.stream, 'projector')).num_redelivered > 0,
        10_000,
      );
      expect(p.appliedSeq()).toBe(1);
      expect(await rows(w.db, 'SELECT count(*)::int AS n FROM salt_events')).toEqual([{ n: 1 }]);
      expect(await rows(w.db, 'SELECT count(*)::int AS n FROM agents')).toEqual([{ n: 0 }]);
      // the database comes back
      await w.db.query('ALTER TABLE salt_returns_away RENAME TO salt_returns');
      await waitFor('checkpoint 3', () => p.appliedSeq() >= 3, 20_000);
    } finally {
      await p.stop();
    }
    expect(await rows(w.db, 'SELECT id, "return" FROM salt_returns')).toEqual([{ id: 'a', return: 'hi' }]);
    expect(await rows(w.db, 'SELECT returned FROM jobs')).toEqual([{ returned: 1 }]);
    expect(await rows(w.db, 'SELECT count(*)::int AS n FROM salt_events')).toEqual([{ n: 3 }]);
    expect(await rows(w.db, 'SELECT count(*)::int AS n FROM dead_letters')).toEqual([{ n: 0 }]);
  });
});

describe('poison messages', () => {
  it('go to dead_letters with their raw bytes and error, are acknowledged, and later events still project', async () => {
    // given
    const jid = newJid();
    const notJson = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x00, 0x01]); // "{"" then bytes that are not UTF-8
    const badSchema = JSON.stringify({ type: 'job.returned', tag: 'salt/job/x/ret/y', data: { id: 'y' } });
    const s1 = await appendRaw(w.ledger, `ledger.job.${jid}.ret.a`, notJson);
    const s2 = await appendRaw(w.ledger, 'ledger.job.x.ret.y', badSchema);
    const s3 = await appendRaw(w.ledger, 'ledger.nonsense', JSON.stringify(published(jid)));
    // a valid event on the wrong subject
    const s4 = await appendRaw(w.ledger, `ledger.job.${jid}.ret.b`, JSON.stringify(returned(jid, 'a', 'mine')));
    const good = await append(w.ledger, published(jid, { minions: ['a'] }), returned(jid, 'a', 'fine'));

    // when
    await project();

    // then
    const dead = await rows<{ seq: string; subject: string; raw: Buffer; error: string }>(
      w.db,
      'SELECT seq, subject, raw, error FROM dead_letters ORDER BY seq',
    );
    expect(dead.map((d) => [Number(d.seq), d.subject])).toEqual([
      [s1, `ledger.job.${jid}.ret.a`],
      [s2, 'ledger.job.x.ret.y'],
      [s3, 'ledger.nonsense'],
      [s4, `ledger.job.${jid}.ret.b`],
    ]);
    expect(new Uint8Array(dead[0]!.raw)).toEqual(notJson);
    expect(dead[1]!.raw.toString('utf8')).toBe(badSchema);
    expect(dead[0]!.error).toMatch(/^not a JSON document/);
    expect(dead[1]!.error).toMatch(/^invalid event/);
    expect(dead[1]!.error).toContain('jid');
    expect(dead[2]!.error).toMatch(/not a ledger event subject/);
    expect(dead[3]!.error).toMatch(/agent id "a" in the event, "b" in the subject/);

    expect(await rows(w.db, 'SELECT id FROM salt_events ORDER BY id')).toEqual(good.map((s) => ({ id: String(s) })));
    expect(await rows(w.db, 'SELECT id, "return" FROM salt_returns')).toEqual([{ id: 'a', return: 'fine' }]);
    expect(await rows(w.db, 'SELECT returned FROM jobs')).toEqual([{ returned: 1 }]);
    expect(await ackPending()).toBe(0);
  });

  it('a job.published whose metadata nests 10,000 deep is a dead letter, not a rollback loop', async () => {
    const jid = newJid();
    const deep = '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000);
    const body = JSON.stringify({
      ...published(jid, { minions: ['a'] }),
      data: { ...published(jid).data, minions: ['a'], metadata: '@DEEP@' },
    }).replace('"@DEEP@"', deep);
    const s1 = await appendRaw(w.ledger, `ledger.job.${jid}.new`, body);
    const jid2 = newJid();
    const good = await append(w.ledger, published(jid2, { minions: ['a'] }), returned(jid2, 'a', 'fine'));
    await project();
    const dead = await rows<{ seq: string; error: string }>(w.db, 'SELECT seq, error FROM dead_letters ORDER BY seq');
    expect(dead.map((d) => Number(d.seq))).toEqual([s1]);
    expect(dead[0]!.error).toBe('invalid event: nested more than 512 levels deep');
    expect(await rows(w.db, 'SELECT id FROM salt_events ORDER BY id')).toEqual(good.map((s) => ({ id: String(s) })));
    expect(await rows(w.db, 'SELECT jid FROM jobs')).toEqual([{ jid: jid2 }]);
    expect(await ackPending()).toBe(0);
  });

  it('a valid event the database refuses (too long for its column, NUL) becomes a dead letter; the rest of its batch is applied', async () => {
    const jid = newJid();
    const seqs = await append(
      w.ledger,
      published(jid, { minions: ['a', 'b', 'c'] }),
      returned(jid, 'a', 'ok'),
      returned(jid, 'b', 'x', { fun: 'f'.repeat(51) }), // salt_returns.fun is varchar(50)
      returned(jid, 'c', 'nul \u0000 inside'), // jsonb has no NUL
      agentStarted('a'),
    );
    await project();

    const dead = await rows<{ seq: string; error: string }>(w.db, 'SELECT seq, error FROM dead_letters ORDER BY seq');
    expect(dead.map((d) => Number(d.seq))).toEqual([seqs[2], seqs[3]]);
    expect(dead[0]!.error).toMatch(/salt_returns: value too long for type character varying\(50\) \(SQLSTATE 22001\)/);
    expect(dead[1]!.error).toMatch(/SQLSTATE 22P05/);
    expect(await rows(w.db, 'SELECT id FROM salt_returns')).toEqual([{ id: 'a' }]);
    expect(await rows(w.db, 'SELECT id FROM salt_events ORDER BY id')).toEqual([seqs[0], seqs[1], seqs[4]].map((s) => ({ id: String(s) })));
    expect(await rows(w.db, 'SELECT returned FROM jobs')).toEqual([{ returned: 1 }]);
    expect(await rows(w.db, 'SELECT id, starts FROM agents')).toEqual([{ id: 'a', starts: 1 }]);
    expect(await rows(w.db, 'SELECT last_seq FROM projector_checkpoint')).toEqual([{ last_seq: String(seqs[4]) }]);
  });
});
