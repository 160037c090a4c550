// Upgrade path: given a database written by the projector before the hash chain — salt_events
// and salt_returns `alter_time` and dead_letters `received_at` taken from the clock, no chain —
// when the projector starts, then it computes the chain and sets those times to the stream's
// in one pass, records the sequence it backfilled up to, and `audit verify` finds nothing.
// Real nats-server and PostgreSQL.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAIN_ZERO, chainOver, runnerPublishedTag, runnerReturnedTag, type RunnerReturned } from '@jobledger/core';
import { auditVerify, formatDifference } from './audit-verify.js';
import { startProjector } from './projector.js';
import { Rebuild } from './rebuild.js';
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
  stamp,
  waitFor,
  world,
  type World,
} from '../test/support.js';

let w: World;
const NAME = 'projector';

async function project(): Promise<void> {
  const p = await startProjector(w.config({ batch: 5 }), quietLogger());
  try {
    const last = await lastSeq(w.ledger);
    await waitFor(`checkpoint ${last}`, () => p.appliedSeq() >= last);
  } finally {
    await p.stop();
  }
}

const verify = () => auditVerify({ databaseUrl: w.databaseUrl, ledger: w.ledger, name: NAME, masterId: MASTER_ID, batch: 4 });

function runnerReturned(jid: string): RunnerReturned {
  const data = { fun: 'runner.jobs.list_jobs', jid, user: 'alice', fun_args: [], _stamp: stamp() };
  return { type: 'runner.returned', tag: runnerReturnedTag(jid), data: { ...data, return: { a: 1 }, success: true } };
}

beforeAll(async () => {
  w = await world('backfill');
  await append(w.ledger, agentStarted('web1'));
  for (let i = 0; i < 3; i++) {
    const jid = newJid();
    await append(
      w.ledger,
      published(jid, { minions: ['web1'] }),
      procStarted(jid, 'web1', 10 + i),
      returned(jid, 'web1', { n: i }),
      procEnded(jid, 'web1', 10 + i),
    );
  }
  // One job, two agents with the same return: each row gets its own message's time.
  const twice = newJid();
  await append(w.ledger, returned(twice, 'web1', 'same'));
  await append(w.ledger, returned(twice, 'web2', 'same'));
  const run = newJid();
  await append(w.ledger, {
    type: 'runner.published',
    tag: runnerPublishedTag(run),
    data: { fun: 'runner.jobs.list_jobs', jid: run, user: 'alice', fun_args: [], _stamp: stamp() },
  });
  await append(w.ledger, runnerReturned(run));
  await appendRaw(w.ledger, 'ledger.job.20261126000000000000.ret.web1', '{"broken"');
  await project();

  // What the version before the chain left: the clock's times, no chain, no chain rows.
  await new Promise((r) => setTimeout(r, 20));
  await w.db.query('UPDATE salt_events SET alter_time = now()');
  await w.db.query('UPDATE salt_returns SET alter_time = now()');
  await w.db.query('UPDATE dead_letters SET received_at = now()');
  await w.db.query('UPDATE projector_checkpoint SET chain = NULL');
  await w.db.query('DELETE FROM projector_chain');
}, 120_000);

afterAll(async () => {
  await w?.close();
});

describe('a checkpoint from before the chain', () => {
  it('shows every clock-stamped row as different before the projector starts', async () => {
    const r = await verify();
    expect(r.ok).toBe(false);
    const lines = r.differences.map(formatDifference);
    expect(lines.some((l) => /^salt_events: .*row differs \(alter_time\)$/.test(l))).toBe(true);
    expect(lines.some((l) => /^salt_returns: .*row differs \(alter_time\)$/.test(l))).toBe(true);
    expect(lines.some((l) => /^dead_letters: seq \d+: row differs \(received_at\)$/.test(l))).toBe(true);
  });

  it('the projector backfills chain and times at its start; audit verify then finds nothing', async () => {
    const last = await lastSeq(w.ledger);
    await project();
    const stream = await readStream(w.ledger, 1, last);
    expect(await rows(w.db, 'SELECT last_seq::int AS s, chain, backfilled_seq::int AS b FROM projector_checkpoint')).toEqual([
      { s: last, chain: chainOver(CHAIN_ZERO, stream), b: last },
    ]);
    expect(await Rebuild.upgradedAt(w.db, 'public', NAME)).toBe(last);
    // every row's time is its message's stream time
    const times = new Map(stream.map((m) => [m.seq, m.time.toISOString()]));
    const events = await rows<{ id: string; alter_time: Date }>(w.db, 'SELECT id::text, alter_time FROM salt_events');
    expect(events.length).toBeGreaterThan(10);
    for (const e of events) expect(e.alter_time.toISOString()).toBe(times.get(Number(e.id)));

    const r = await verify();
    expect(r.differences.map(formatDifference)).toEqual([]);
    expect(r).toMatchObject({ ok: true, seq: last, differenceCount: 0 });
    expect(r.chain).toMatchObject({ diverging: 0, unknown: false });
    expect(r.chain.checked).toBeGreaterThanOrEqual(1);
  });

  it('later batches extend the backfilled chain; verify stays clean', async () => {
    const jid = newJid();
    await append(w.ledger, published(jid, { minions: ['web1'] }), returned(jid, 'web1', true));
    await project();
    const last = await lastSeq(w.ledger);
    const r = await verify();
    expect(r.differences).toEqual([]);
    expect(r).toMatchObject({ ok: true, seq: last });
    expect(r.chain.diverging).toBe(0);
    expect(r.chain.checked).toBeGreaterThan(1);
  });
});
