// The projector as a real process: kill -9 in the middle of a burst of returns, start it again,
// and every return is in salt_returns exactly once. Also its clean stop and its config error.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvent, msgIds, subjects } from '@jobledger/core';
import { append, lastSeq, MASTER_ID, newJid, published, returned, rows, waitFor, world, type World } from '../test/support.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = path.join(REPO, 'services/projector/dist/main.js');

const JOBS = 50;
const PER_JOB = 100; // 5,000 returns
const WINDOW = 256; // outstanding publishes

let w: World;
const children: ChildProcess[] = [];

beforeAll(async () => {
  execFileSync('npx', ['tsc', '-b', 'services/projector'], { cwd: REPO, stdio: 'pipe' });
  w = await world('projector_crash');
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await w?.close();
});

interface Proc {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

function spawnProjector(name: string, env: Record<string, string | undefined>): Proc {
  const child = spawn(process.execPath, [MAIN], {
    cwd: REPO,
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  void name;
  return { child, exited, stderr: () => err };
}

function projectorEnv(tag: string): Record<string, string> {
  return {
    JOBLEDGER_NATS_URL: w.nats.url,
    DATABASE_URL: w.databaseUrl,
    JOBLEDGER_MASTER_ID: MASTER_ID,
    JOBLEDGER_HOME: w.dir,
    JOBLEDGER_LOG_FILE: path.join(w.dir, `${tag}.log`),
    JOBLEDGER_READY_FILE: path.join(w.dir, `${tag}.ready`),
    JOBLEDGER_LOG_LEVEL: 'debug',
  };
}

async function startReady(tag: string): Promise<Proc> {
  const env = projectorEnv(tag);
  const p = spawnProjector(tag, env);
  await waitFor(`${tag} ready`, () => {
    if (p.child.exitCode !== null) throw new Error(`${tag} exited: ${p.stderr()}`);
    return existsSync(env.JOBLEDGER_READY_FILE!);
  });
  expect(readFileSync(env.JOBLEDGER_READY_FILE!, 'utf8').trim()).toBe(String(p.child.pid));
  return p;
}

const checkpoint = async () =>
  Number((await rows<{ last_seq: string }>(w.db, 'SELECT last_seq FROM projector_checkpoint'))[0]?.last_seq ?? 0);
const returnsCount = async () => (await rows<{ n: number }>(w.db, 'SELECT count(*)::int AS n FROM salt_returns'))[0]!.n;

describe('projector process', () => {
  it('loses and duplicates nothing when killed with SIGKILL in the middle of a burst', async () => {
    // given the jobs, and a running projector
    const jids = Array.from({ length: JOBS }, () => newJid());
    const minions = Array.from({ length: PER_JOB }, (_, i) => `minion-${String(i).padStart(3, '0')}.example.com`);
    await append(w.ledger, ...jids.map((jid) => published(jid, { minions })));
    const first = await startReady('first');

    // when 5,000 returns are published, with a bounded window of outstanding publishes…
    const burstStarted = Date.now();
    const burst = (async () => {
      const inflight = new Set<Promise<unknown>>();
      for (const id of minions) {
        for (const jid of jids) {
          const ev = returned(jid, id, { pid: 1, out: `${jid}/${id}` });
          const p = w.ledger.js.publish(subjects.jobRet(jid, id), encodeEvent(ev), { msgID: msgIds.jobRet(jid, id) });
          inflight.add(p);
          void p.finally(() => inflight.delete(p));
          if (inflight.size >= WINDOW) await Promise.race(inflight);
        }
      }
      await Promise.all(inflight);
    })();

    // …and the projector is killed once some but not all returns are in the table, while a
    // batch it has received is not committed yet: a lock on salt_returns holds its transaction
    // (a slow commit), so the kill finds delivered, unacknowledged messages.
    await waitFor('first returns projected', async () => (await returnsCount()) > 0, 30_000);
    const locker = await w.db.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE salt_returns IN SHARE MODE');
    await waitFor('a batch waiting on the lock', async () => {
      const waiting = await rows(
        w.db,
        "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO salt_returns%'",
      );
      return waiting.length > 0;
    });
    const infoAtKill = await w.ledger.jsm.consumers.info(w.ledger.stream, 'projector');
    const ackPendingAtKill = infoAtKill.num_ack_pending;
    const deliveredAtKill = infoAtKill.delivered.stream_seq;
    first.child.kill('SIGKILL');
    const killed = await first.exited;
    await locker.query('COMMIT');
    locker.release();
    expect(ackPendingAtKill).toBeGreaterThan(0);
    const atKill = await returnsCount();
    const checkpointAtKill = await checkpoint();
    const killedAfterMs = Date.now() - burstStarted;
    expect(killed.signal).toBe('SIGKILL');
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(JOBS * PER_JOB);

    await burst;
    const last = await lastSeq(w.ledger);
    expect(last).toBe(JOBS + JOBS * PER_JOB);

    // then a new process catches up
    const restarted = Date.now();
    const second = await startReady('second');
    await waitFor(`checkpoint ${last}`, async () => (await checkpoint()) >= last, 60_000);
    const catchUpMs = Date.now() - restarted;

    expect(await rows(w.db, 'SELECT count(*)::int AS n, count(DISTINCT (jid, id))::int AS distinct FROM salt_returns')).toEqual([
      { n: JOBS * PER_JOB, distinct: JOBS * PER_JOB },
    ]);
    expect(
      await rows(
        w.db,
        'SELECT count(*)::int AS n, sum(returned)::int AS returned, sum(expected)::int AS expected, max(failed) AS failed FROM jobs',
      ),
    ).toEqual([{ n: JOBS, returned: JOBS * PER_JOB, expected: JOBS * PER_JOB, failed: 0 }]);
    expect(await rows(w.db, 'SELECT count(*)::int AS n, min(id)::int AS lo, max(id)::int AS hi FROM salt_events')).toEqual([
      { n: last, lo: 1, hi: last },
    ]);
    expect(await rows(w.db, 'SELECT count(*)::int AS n FROM dead_letters')).toEqual([{ n: 0 }]);

    // every delivered message is acknowledged in the end (the redeliveries of the batch in
    // flight at the kill are skipped as already applied)
    await waitFor(
      'no ack pending',
      async () => (await w.ledger.jsm.consumers.info(w.ledger.stream, 'projector')).num_ack_pending === 0,
      // ack_wait (30 s) after the kill, then every redelivery of the batch in flight is skipped:
      // on a loaded 2-core machine that can take well over 15 s more
      90_000,
    );

    // Messages the killed process had not been handed yet go to the new one at once, before the
    // unacknowledged ones come back (after ack_wait): it read those from the stream to fill the
    // gap. (When the killed process had been handed the whole burst, there is no newer message:
    // the redeliveries simply come in order, and the counts above are what is checked.)
    const secondLog = readFileSync(path.join(w.dir, 'second.log'), 'utf8');
    if (last > deliveredAtKill) expect(secondLog).toContain('filled a gap in the delivered sequence from the stream');
    const caughtUp = JOBS * PER_JOB - atKill;
    console.log(
      `[projector crash test] killed after ${killedAfterMs} ms with ${atKill} returns projected (checkpoint ${checkpointAtKill}, ${ackPendingAtKill} delivered but unacknowledged); ` +
        `restart applied ${caughtUp} returns in ${catchUpMs} ms (${Math.round((caughtUp * 1000) / catchUpMs)} returns/s incl. start-up)`,
    );

    // a clean stop: SIGTERM → exit 0
    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
  }, 180_000);

  it('projects a burst published while it runs', async () => {
    // throughput with the process already up: the checkpoint is where the previous test ended
    const p = await startReady('third');
    const jid = newJid();
    const ids = Array.from({ length: 10_000 }, (_, i) => `host-${i}`);
    await append(w.ledger, published(jid, { minions: ids }));
    const started = Date.now();
    const inflight = new Set<Promise<unknown>>();
    for (const id of ids) {
      const pr = w.ledger.js.publish(subjects.jobRet(jid, id), encodeEvent(returned(jid, id, true)), { msgID: msgIds.jobRet(jid, id) });
      inflight.add(pr);
      void pr.finally(() => inflight.delete(pr));
      if (inflight.size >= WINDOW) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    const published_ = Date.now();
    const last = await lastSeq(w.ledger);
    await waitFor(`checkpoint ${last}`, async () => (await checkpoint()) >= last, 60_000);
    const done = Date.now();
    expect(await rows(w.db, 'SELECT returned FROM jobs WHERE jid = $1', [jid])).toEqual([{ returned: 10_000 }]);
    console.log(
      `[projector throughput] 10000 returns: published in ${published_ - started} ms, projected ${done - published_} ms later; ` +
        `${Math.round(10_000_000 / (done - started))} returns/s end to end`,
    );
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
  }, 120_000);

  it('a configuration error is one line on stderr and exit code 2', async () => {
    const p = spawnProjector('bad', { JOBLEDGER_NATS_URL: w.nats.url, JOBLEDGER_PROJECTOR_BATCH: 'lots' });
    expect(await p.exited).toEqual({ code: 2, signal: null });
    expect(p.stderr()).toBe('jobledger-projector: configuration error: DATABASE_URL is not set\n');

    const q = spawnProjector('bad2', { JOBLEDGER_NATS_URL: w.nats.url, DATABASE_URL: w.databaseUrl, JOBLEDGER_PROJECTOR_BATCH: 'lots' });
    expect(await q.exited).toEqual({ code: 2, signal: null });
    expect(q.stderr()).toBe("jobledger-projector: configuration error: JOBLEDGER_PROJECTOR_BATCH must be a number, got 'lots'\n");
  });
});
