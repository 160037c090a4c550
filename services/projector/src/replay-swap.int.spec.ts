// Given a live schema projected by the running projector, when `replay --swap` replaces it, then
// the new `public` keeps the owner and privileges of the old one (schema and tables), a `public`
// holding objects that are not jobledger's is refused, and a projector batch or a retention pass
// that waited for the swap's lock continues on the NEW tables holding the new checkpoint row's
// lock (apply.ts's lockCheckpoint and retention's second select). Real nats-server and PostgreSQL.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { microsToJid } from '@jobledger/core';
import { auditVerify } from './audit-verify.js';
import { replay, SwapRefusedError } from './replay.js';
import { cleanOldJobs } from './retention.js';
import { startProjector, type Projector } from './projector.js';
import {
  agentStarted,
  append,
  lastSeq,
  MASTER_ID,
  newJid,
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

let w: World;
let projector: Projector;
/** Connections of the test's own, apart from w.db (which retention uses here). */
let side: pg.Pool;
const NAME = 'projector';
const ENV = { JOBLEDGER_KEEP_JOBS_SECONDS: '86400' };

async function settled(): Promise<number> {
  const last = await lastSeq(w.ledger);
  await waitFor('the projector to apply everything', () => projector.appliedSeq() >= last);
  return last;
}

async function job(jid: string, agents: string[]): Promise<void> {
  await append(w.ledger, published(jid, { minions: agents, fun: 'test.echo' }));
  for (const [i, id] of agents.entries()) {
    await append(
      w.ledger,
      procStarted(jid, id, 100 + i, 'test.echo'),
      returned(jid, id, true),
      procEnded(jid, id, 100 + i, { retcode: 0 }, 'test.echo'),
    );
  }
}

let micro = 0n;
const oldJid = () => microsToJid(BigInt(Date.now() - 3 * 86_400_000) * 1000n + micro++);

const verify = () => auditVerify({ databaseUrl: w.databaseUrl, ledger: w.ledger, name: NAME, masterId: MASTER_ID, env: ENV });
const swap = (extra: { into?: string; beforeCommit?: () => Promise<void> } = {}) =>
  replay({ databaseUrl: w.databaseUrl, ledger: w.ledger, name: NAME, masterId: MASTER_ID, swap: true, batch: 20, ...extra });

/** Sessions of this database waiting for a lock (`wait_event`), whose statement matches `like`. */
async function waiting(waitEvent: string, like: string): Promise<number> {
  const [r] = await rows<{ n: number }>(
    side,
    `SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = $1 AND query ILIKE $2`,
    [waitEvent, like],
  );
  return r!.n;
}

/** Whether some other transaction holds the live checkpoint row locked. */
async function checkpointLocked(): Promise<boolean> {
  const c = await side.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT 1 FROM public.projector_checkpoint WHERE name = $1 FOR UPDATE NOWAIT', [NAME]);
    return false;
  } catch (err) {
    if ((err as { code?: string }).code === '55P03') return true;
    throw err;
  } finally {
    await c.query('ROLLBACK').catch(() => undefined);
    c.release();
  }
}

beforeAll(async () => {
  w = await world('swap');
  side = new pg.Pool({ connectionString: w.databaseUrl, max: 4 });
  projector = await startProjector(w.config({ batch: 5 }), quietLogger());
  await append(w.ledger, agentStarted('web1'), agentStarted('db1'));
  for (let i = 0; i < 4; i++) await job(newJid(), ['web1', 'db1']);
  await settled();
}, 120_000);

afterAll(async () => {
  await projector?.stop();
  await side?.end();
  await w?.close();
});

describe('audit verify: the lock', () => {
  it('compares in a snapshot: the projector goes on meanwhile, and the result is at the snapshot', async () => {
    const before = await settled();
    const jid = newJid();
    let during = 0;
    const r = await auditVerify({
      databaseUrl: w.databaseUrl,
      ledger: w.ledger,
      name: NAME,
      masterId: MASTER_ID,
      env: ENV,
      afterSnapshot: async () => {
        expect(await checkpointLocked()).toBe(false);
        await job(jid, ['web1', 'db1']);
        during = await settled();
      },
    });
    expect(during).toBeGreaterThan(before);
    expect(r.differences).toEqual([]);
    expect(r).toMatchObject({ ok: true, seq: before });
    expect(await rows(side, 'SELECT returned FROM public.jobs WHERE jid = $1', [jid])).toEqual([{ returned: 2 }]);
  });
});

describe('replay --swap: ownership and foreign objects', () => {
  it('gives the new public the owner and privileges of the old one, schema and tables', async () => {
    const role = `jl_reader_${process.pid}`;
    await side.query(`CREATE ROLE ${role} NOLOGIN`);
    try {
      await side.query(`GRANT SELECT ON public.jobs TO ${role}`);
      await side.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
      const schemaAcl = () =>
        rows(side, "SELECT pg_get_userbyid(nspowner) AS owner, nspacl::text AS acl FROM pg_namespace WHERE nspname = 'public'");
      const before = await schemaAcl();
      expect(before[0]!.acl).toContain(`${role}=U/`);
      const r = await swap();
      expect(r.retired).toMatch(/^public_before_/);
      expect(await schemaAcl()).toEqual(before);
      expect(await rows(side, `SELECT has_table_privilege($1, 'public.jobs', 'SELECT') AS s`, [role])).toEqual([{ s: true }]);
      expect(await rows(side, `SELECT has_table_privilege($1, 'public.jids', 'SELECT') AS s`, [role])).toEqual([{ s: false }]);
      await side.query(`DROP SCHEMA "${r.retired}" CASCADE`);
    } finally {
      await side.query(`DROP OWNED BY ${role}`);
      await side.query(`DROP ROLE ${role}`);
    }
    const last = await settled();
    expect(await verify()).toMatchObject({ ok: true, seq: last });
  });

  it('refuses a public that holds tables, functions or extensions that are not jobledger', async () => {
    await side.query('CREATE TABLE public.operator_notes (note text)');
    await side.query('CREATE FUNCTION public.jl_answer() RETURNS int LANGUAGE sql AS $$ SELECT 42 $$');
    try {
      const err = await swap().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SwapRefusedError);
      expect((err as Error).message).toMatch(
        /holds objects that are not jobledger's \(function jl_answer\(\), table operator_notes\): not swapped/,
      );
      // nothing moved, no rebuild left behind
      expect(await rows(side, 'SELECT count(*)::int AS n FROM public.operator_notes')).toEqual([{ n: 0 }]);
      expect(
        await rows(side, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'replay\\_%' OR nspname LIKE 'public\\_before\\_%'"),
      ).toEqual([]);
    } finally {
      await side.query('DROP TABLE public.operator_notes');
      await side.query('DROP FUNCTION public.jl_answer()');
    }
  });
});

describe('replay --swap: work queued on the lock goes on in the new tables', () => {
  /**
   * Swaps into `swapin` while `queue` puts work on the live checkpoint's lock; a session holds
   * `swapin.jobs` in SHARE mode through the commit, so the queued work, once it has its locks,
   * stops at its first write of `jobs`: there it must hold the NEW checkpoint row.
   */
  async function swapWithQueued(queue: () => Promise<void>, like: string): Promise<{ retired: string }> {
    const holder = await side.connect();
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await holder.query('COMMIT');
    };
    try {
      let probed = false;
      const r = await swap({
        into: 'swapin',
        beforeCommit: async () => {
          await holder.query('BEGIN');
          await holder.query('LOCK TABLE swapin.jobs IN SHARE MODE');
          await queue();
          await waitFor(
            'the queued work to wait for the checkpoint lock',
            async () => (await waiting('transactionid', like)) + (await waiting('tuple', like)) > 0,
          );
          probed = true;
        },
      });
      expect(probed).toBe(true);
      // after the commit the queued work has the checkpoint locks and waits for swapin.jobs (now public.jobs)
      await waitFor('the queued work to reach the jobs table', async () => (await waiting('relation', '%')) > 0);
      expect(await checkpointLocked()).toBe(true);
      await release();
      return { retired: r.retired! };
    } finally {
      await release().catch(() => undefined);
      holder.release();
    }
  }

  it('a projector batch that waited re-selects the checkpoint of the new tables', async () => {
    const before = await settled();
    const jid = newJid();
    const { retired } = await swapWithQueued(() => job(jid, ['web1']), '%projector_checkpoint%FOR UPDATE%');
    const last = await settled();
    expect(last).toBeGreaterThan(before);
    expect(await rows(side, 'SELECT jid, returned FROM public.jobs WHERE jid = $1', [jid])).toEqual([{ jid, returned: 1 }]);
    expect(await rows(side, `SELECT jid FROM "${retired}".jobs WHERE jid = $1`, [jid])).toEqual([]);
    expect(await rows(side, 'SELECT last_seq::int AS s FROM public.projector_checkpoint WHERE name = $1', [NAME])).toEqual([{ s: last }]);
    expect(await verify()).toMatchObject({ ok: true, seq: last, differenceCount: 0 });
    await side.query(`DROP SCHEMA "${retired}" CASCADE`);
  });

  it('a retention pass that waited removes from the new tables and logs at their checkpoint', async () => {
    const old = oldJid();
    await job(old, ['db1']);
    const seq = await settled();
    let pass: ReturnType<typeof cleanOldJobs> | undefined;
    const { retired } = await swapWithQueued(async () => {
      pass = cleanOldJobs(w.db, { keepJobsSeconds: 86_400, archive: true, checkpoint: NAME });
      pass.catch(() => undefined);
    }, '%projector_checkpoint%FOR UPDATE%');
    expect((await pass!).jobs).toBe(1);
    expect(await rows(side, 'SELECT jid FROM public.jobs WHERE jid = $1', [old])).toEqual([]);
    expect(await rows(side, 'SELECT jid FROM public.jobs_archive WHERE jid = $1', [old])).toEqual([{ jid: old }]);
    expect(await rows(side, `SELECT jid FROM "${retired}".jobs WHERE jid = $1`, [old])).toEqual([{ jid: old }]);
    expect(await rows(side, 'SELECT seq::int AS s, jids FROM public.retention_log')).toEqual([{ s: seq, jids: [old] }]);
    expect(await rows(side, `SELECT count(*)::int AS n FROM "${retired}".retention_log`)).toEqual([{ n: 0 }]);
    const v = await verify();
    expect(v.differences).toEqual([]);
    expect(v).toMatchObject({ ok: true, removals: 1 });
    await side.query(`DROP SCHEMA "${retired}" CASCADE`);
  });
});
