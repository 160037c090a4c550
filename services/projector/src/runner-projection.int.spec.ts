// Runner jobs in the job cache: given runner.published / runner.returned events on the stream,
// when the projector has run, then Salt's rows for a runner job (salt/run/<jid>/…), under the
// master id. Real nats-server and PostgreSQL, no mocks.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  jidToDate,
  runnerPublishedTag,
  runnerReturnedTag,
  subjects,
  type RunnerPublished,
  type RunnerReturned,
  type RunnerReturnedData,
} from '@jobledger/core';
import { planBatch } from './projections.js';
import { startProjector } from './projector.js';
import {
  append,
  appendRaw,
  lastSeq,
  MASTER_ID,
  newJid,
  quietLogger,
  readStream,
  rows,
  stamp,
  waitFor,
  world,
  type World,
} from '../test/support.js';

let w: World;
beforeEach(async () => {
  w = await world('projector_runner');
});
afterEach(async () => {
  await w.close();
});

async function project(): Promise<void> {
  const p = await startProjector(w.config(), quietLogger());
  try {
    const last = await lastSeq(w.ledger);
    await waitFor(`checkpoint ${last}`, () => p.appliedSeq() >= last);
  } finally {
    await p.stop();
  }
}

function runnerPublished(
  jid: string,
  fun = 'runner.jobs.list_jobs',
  fun_args: unknown[] = [{ search_function: 'cmd.*' }],
): RunnerPublished {
  return { type: 'runner.published', tag: runnerPublishedTag(jid), data: { fun, jid, user: 'alice', fun_args, _stamp: stamp() } };
}

function runnerReturned(pub: RunnerPublished, over: Partial<RunnerReturnedData>): RunnerReturned {
  return {
    type: 'runner.returned',
    tag: runnerReturnedTag(pub.data.jid),
    data: { ...pub.data, _stamp: stamp(), return: {}, success: true, ...over },
  };
}

describe('runner.published and runner.returned', () => {
  it('a runner job: salt_events for both, then jids, salt_returns and jobs under the master id', async () => {
    // given
    const jid = newJid();
    const pub = runnerPublished(jid);
    const listing = { '20261125181415937764': { Function: 'cmd.run', Arguments: ['ls /'], StartTime: '2026, Nov 25 18:14:15.937764' } };
    const ret = runnerReturned(pub, { return: listing });
    const seqs = await append(w.ledger, pub, ret);

    // when
    await project();

    // then: both events as Salt's bus has them
    expect(await rows(w.db, 'SELECT id, tag, data, master_id FROM salt_events ORDER BY id')).toEqual([
      { id: String(seqs[0]), tag: `salt/run/${jid}/new`, data: pub.data, master_id: MASTER_ID },
      { id: String(seqs[1]), tag: `salt/run/${jid}/ret`, data: ret.data, master_id: MASTER_ID },
    ]);

    // jids: Salt's store_job load, fun and user lifted from the runner dict
    const load = { id: MASTER_ID, tgt: MASTER_ID, jid, return: ret.data, fun: 'runner.jobs.list_jobs', user: 'alice', success: true };
    expect(await rows(w.db, 'SELECT jid, load FROM jids')).toEqual([{ jid, load }]);

    // salt_returns: the master as minion, the whole runner dict as return, success the truth
    expect(await rows(w.db, 'SELECT fun, jid, "return", id, success, full_ret FROM salt_returns')).toEqual([
      { fun: 'runner.jobs.list_jobs', jid, return: ret.data, id: MASTER_ID, success: 'true', full_ret: load },
    ]);

    // jobs: target the master id (list), one expected minion that returned
    const [retTime] = (await readStream(w.ledger, seqs[1]!, seqs[1]!)).map((m) => m.time);
    expect(await rows(w.db, 'SELECT * FROM jobs')).toEqual([
      {
        jid,
        fun: 'runner.jobs.list_jobs',
        arg: [],
        tgt: MASTER_ID,
        tgt_type: 'list',
        user: 'alice',
        metadata: null,
        minions: [MASTER_ID],
        missing: [],
        expected: 1,
        returned: 1,
        failed: 0,
        start_time: jidToDate(jid),
        end_time: retTime,
        published_seq: String(seqs[1]),
      },
    ]);
  });

  it('a runner that raised: success false, counted as failed; the retcode stays in the runner dict', async () => {
    const jid = newJid();
    const pub = runnerPublished(jid, 'runner.jobs.lookup_jid', ['J']);
    const text = 'Exception occurred in runner jobs.lookup_jid: Error: boom';
    await append(w.ledger, pub, runnerReturned(pub, { return: text, success: false, retcode: 1 }));

    await project();

    expect(await rows(w.db, `SELECT success, "return"->>'return' AS text, "return"->'retcode' AS retcode FROM salt_returns`)).toEqual([
      { success: 'false', text, retcode: 1 },
    ]);
    expect(await rows(w.db, 'SELECT returned, failed FROM jobs')).toEqual([{ returned: 1, failed: 1 }]);
  });

  it('a runner still running is only in salt_events (Salt caches runner jobs when they return)', async () => {
    await append(w.ledger, runnerPublished(newJid()));

    await project();

    expect(await rows(w.db, 'SELECT count(*)::int AS n FROM salt_events')).toEqual([{ n: 1 }]);
    for (const t of ['jids', 'salt_returns', 'jobs']) expect(await rows(w.db, `SELECT count(*)::int AS n FROM ${t}`)).toEqual([{ n: 0 }]);
  });

  it('a runner event on the wrong subject, or not a runner function, is a dead letter', async () => {
    const jid = newJid();
    const pub = runnerPublished(jid);
    const seqA = await appendRaw(w.ledger, subjects.runRet(jid), JSON.stringify(pub));
    const seqB = await appendRaw(w.ledger, subjects.runNew(jid), JSON.stringify({ ...pub, data: { ...pub.data, fun: 'jobs.list_jobs' } }));

    await project();

    const letters = await rows<{ seq: string; error: string }>(w.db, 'SELECT seq, error FROM dead_letters ORDER BY seq');
    expect(letters.map((l) => Number(l.seq))).toEqual([seqA, seqB]);
    expect(letters[0]!.error).toMatch(/a runner\.published event on a run\.ret subject/);
    expect(letters[1]!.error).toMatch(/^invalid event/);
  });

  it('folds a batch with both events exactly like one event at a time', () => {
    const jid = '20260102030405123456';
    const pub = runnerPublished(jid);
    const ret = runnerReturned(pub, { return: true });
    const enc = (e: unknown) => new TextEncoder().encode(JSON.stringify(e));
    const time = new Date(Date.UTC(2026, 0, 2, 3, 4, 6));
    const plan = planBatch(
      [
        { seq: 1, subject: subjects.runNew(jid), data: enc(pub), time },
        { seq: 2, subject: subjects.runRet(jid), data: enc(ret), time },
      ],
      { masterId: 'm_master' },
    );
    expect(plan.deadLetters).toEqual([]);
    expect(plan.statements.map((s) => s.name)).toEqual(['salt_events', 'jids', 'salt_returns', 'jobs']);
  });
});
