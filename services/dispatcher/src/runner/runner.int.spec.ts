// Integration: the runner API (`jobledger.api.runner`) served in-process against a real
// nats-server of this file's own and a fresh, migrated PostgreSQL database whose read models
// are filled directly (the projector is another service). Every call must be recorded on the
// stream; list_jobs' SQL must agree with Salt's in-memory filter semantics.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import {
  apiSubjects,
  CHUNKS_HEADER,
  decodeEvent,
  encodeEvent,
  formatJidInstance,
  genJid,
  jidToDate,
  jobReturnedTag,
  joinChunks,
  matchesListJobs,
  microsToJid,
  msgIds,
  normaliseListJobsFilters,
  runnerReply,
  subjects,
  type JobReturned,
  type LedgerEvent,
  type ListJobsFilters,
  type RunnerReply,
  type RunnerSuccess,
} from '@jobledger/core';
import { createLogger, migrateDatabase, openLedger, type Ledger } from '@jobledger/runtime';
import { startNatsServer, type NatsServerHandle } from '../../../../packages/cli/src/embedded/nats-server.js';
import { freshDatabase } from '../../../../test/support/servers.js';
import type { PublishJob, PublishSuccess } from '../publish-request.js';
import { listJobsSql } from './list-jobs-sql.js';
import { startRunnerService, type RunnerService } from './service.js';

const STREAM = 'LEDGER_RUNNER_INT';
let tmp: string;
let server: NatsServerHandle;
let ledger: Ledger;
let client: NatsConnection;
let db: pg.Pool;
let databaseUrl: string;
let service: RunnerService;
/** What `jobs.active`'s saltutil.running job gets back, per agent. */
let runningReplies: Record<string, unknown> = {};
let publishDelayMs = 0;
const published: PublishJob[] = [];

/** The dispatcher's publish path, as far as jobs.active needs it: the job and the agents' returns on the stream. */
async function fakePublish(job: PublishJob): Promise<PublishSuccess> {
  published.push(job);
  await new Promise((r) => setTimeout(r, publishDelayMs));
  const jid = genJid();
  const minions = Object.keys(runningReplies).sort();
  const event: LedgerEvent = {
    type: 'job.published',
    tag: `salt/job/${jid}/new`,
    data: {
      jid,
      tgt: job.tgt,
      tgt_type: job.tgt_type,
      user: job.user,
      fun: job.fun,
      arg: [],
      minions,
      missing: [],
      ret: '',
      _stamp: '2026-01-01T00:00:00',
    },
  };
  const ack = await ledger.js.publish(subjects.jobNew(jid), encodeEvent(event));
  for (const id of minions) {
    const ret: JobReturned = {
      type: 'job.returned',
      tag: jobReturnedTag(jid, id),
      data: {
        cmd: '_return',
        id,
        jid,
        fun: job.fun,
        fun_args: [],
        return: runningReplies[id],
        retcode: 0,
        success: true,
        user: job.user,
        _stamp: '2026-01-01T00:00:01',
      },
    };
    await ledger.js.publish(subjects.jobRet(jid, id), encodeEvent(ret));
  }
  return { jid, minions, missing: [], seq: ack.seq };
}

async function call(fun: string, arg: unknown[] = [], kwarg: Record<string, unknown> = {}, raw?: string): Promise<RunnerReply> {
  const body = raw ?? JSON.stringify({ fun, arg, kwarg, user: 'alice' });
  const chunks: Uint8Array[] = [];
  let expected = 0;
  for await (const m of await client.requestMany(apiSubjects.runner, body, { strategy: 'sentinel', maxWait: 30_000 })) {
    if (m.data.length === 0) break;
    expected = Number(m.headers?.get(CHUNKS_HEADER));
    chunks.push(m.data);
  }
  expect(chunks.length).toBe(expected);
  return runnerReply.parse(JSON.parse(new TextDecoder().decode(joinChunks(chunks))));
}

async function ok(fun: string, arg: unknown[] = [], kwarg: Record<string, unknown> = {}): Promise<RunnerSuccess> {
  const r = await call(fun, arg, kwarg);
  if ('error' in r) throw new Error(JSON.stringify(r));
  return r;
}

/** The runner events recorded for a jid. */
async function recorded(jid: string): Promise<Array<{ subject: string; msgId?: string; event: LedgerEvent }>> {
  const out = [];
  for (const subject of [subjects.runNew(jid), subjects.runRet(jid)]) {
    const m = await ledger.jsm.streams.getMessage(STREAM, { last_by_subj: subject }).catch(() => null);
    if (m) out.push({ subject: m.subject, msgId: m.header?.get('Nats-Msg-Id'), event: decodeEvent(m.data) });
  }
  return out;
}

interface SeedJob {
  jid: string;
  fun: string;
  arg?: unknown[];
  tgt: string | string[];
  tgt_type?: string;
  user?: string;
  metadata?: Record<string, unknown>;
  minions?: string[];
  returns?: Record<string, { return: unknown; out?: string }>;
}

async function seed(jobs: SeedJob[]): Promise<void> {
  for (const j of jobs) {
    const minions = j.minions ?? [];
    const returns = j.returns ?? {};
    await db.query(
      `INSERT INTO jobs (jid, fun, arg, tgt, tgt_type, "user", metadata, minions, missing, expected, returned, failed, start_time, end_time, published_seq)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '[]', $9, $10, 0, $11, $12, 1)`,
      [
        j.jid,
        j.fun,
        JSON.stringify(j.arg ?? []),
        JSON.stringify(j.tgt),
        j.tgt_type ?? 'glob',
        j.user ?? 'root',
        j.metadata === undefined ? null : JSON.stringify(j.metadata),
        JSON.stringify(minions),
        minions.length,
        Object.keys(returns).length,
        jidToDate(j.jid),
        Object.keys(returns).length > 0 ? new Date(jidToDate(j.jid).getTime() + 1500) : null,
      ],
    );
    let i = 0;
    for (const [id, r] of Object.entries(returns)) {
      const full = {
        cmd: '_return',
        id,
        jid: j.jid,
        fun: j.fun,
        fun_args: j.arg ?? [],
        return: r.return,
        retcode: 0,
        success: true,
        user: 'root',
        ...(r.out ? { out: r.out } : {}),
      };
      await db.query(
        `INSERT INTO salt_returns (fun, jid, "return", id, success, full_ret, alter_time) VALUES ($1, $2, $3, $4, 'true', $5, $6)`,
        [j.fun, j.jid, JSON.stringify(r.return), id, JSON.stringify(full), new Date(jidToDate(j.jid).getTime() + 1000 + i++)],
      );
    }
  }
}

/** A jid `minutes` after 2026-11-01 00:00 UTC, with microseconds. */
const jidAt = (minutes: number, micros = 123456) => microsToJid(BigInt(Date.UTC(2026, 10, 1) + minutes * 60_000) * 1000n + BigInt(micros));

const FUNS = ['cmd.run', 'cmd.run_all', 'test.ping', 'test.echo', 'saltutil.find_job', 'grains.items', 'state.apply'];
const TARGETS: Array<[string | string[], string]> = [
  ['*', 'glob'],
  ['web*', 'glob'],
  [['web1', 'db1'], 'list'],
  ['db1', 'glob'],
  ['web-(1)', 'pcre'],
  [['db2'], 'list'],
];
const fixture: SeedJob[] = Array.from({ length: 84 }, (_, i) => {
  const [tgt, tgt_type] = TARGETS[i % TARGETS.length]!;
  return {
    jid: jidAt(i * 7, (i * 7919) % 1_000_000),
    fun: FUNS[i % FUNS.length]!,
    arg: i % 5 === 0 ? ['uptime', { metadata: { ticket: `T-${i % 3}` }, __kwarg__: true }] : [`arg${i}`],
    tgt,
    tgt_type,
    user: i % 4 === 0 ? 'alice' : 'root',
    ...(i % 6 === 1 ? { metadata: { ticket: `T-${i % 3}`, team: 'ops' } } : {}),
  };
});
const SPECIAL = {
  cmd: jidAt(10_000),
  noReturn: jidAt(10_001),
  out: jidAt(10_002),
};

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'jobledger-runner-'));
  server = await startNatsServer({ storeDir: path.join(tmp, 'nats') });
  ledger = await openLedger({ natsUrl: server.url, stream: STREAM, name: 'runner-test' });
  databaseUrl = await freshDatabase('runner');
  await migrateDatabase(databaseUrl);
  db = new pg.Pool({ connectionString: databaseUrl, max: 3 });
  await seed(fixture);
  await seed([
    {
      jid: SPECIAL.cmd,
      fun: 'cmd.run',
      arg: ['echo hi'],
      tgt: ['web1', 'web2', 'web3'],
      tgt_type: 'list',
      minions: ['web1', 'web2', 'web3'],
      returns: { web2: { return: 'hi' }, web1: { return: '' } },
    },
    { jid: SPECIAL.noReturn, fun: 'test.ping', tgt: '*', minions: ['a', 'b'] },
    {
      jid: SPECIAL.out,
      fun: 'state.apply',
      tgt: 'a',
      minions: ['a'],
      returns: { a: { return: { s: { result: true } }, out: 'highstate' } },
    },
  ]);
  // The projector has applied everything (the runner would otherwise wait for it).
  await db.query(`INSERT INTO projector_checkpoint (name, last_seq) VALUES ('projector', 1000000000)`);
  service = await startRunnerService({
    ledger,
    publish: fakePublish,
    clock: () => BigInt(Date.now()) * 1000n,
    logger: createLogger('runner-test', { level: 'silent' }),
    databaseUrl,
    projectorConsumer: 'projector',
    queue: 'dispatcher',
    activeTimeoutMs: 1500,
  });
  client = await connect({ servers: server.url, name: 'runner-test-client' });
});

afterAll(async () => {
  await service?.stop();
  await client?.close();
  await ledger?.nc.close();
  await db?.end();
  await server?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  runningReplies = {};
  publishDelayMs = 0;
});

describe('every runner call is a runner job on the stream', () => {
  it('appends runner.published then runner.returned with Salt’s runner dict', async () => {
    const r = await ok('jobs.list_jobs_filter', [2], { filter_find_job: false });
    expect(r).toMatchObject({ success: true, retcode: 0 });
    const [pub, ret] = await recorded(r.jid);
    expect(pub).toMatchObject({ subject: `ledger.run.${r.jid}.new`, msgId: msgIds.runNew(r.jid) });
    expect(pub!.event).toEqual({
      type: 'runner.published',
      tag: `salt/run/${r.jid}/new`,
      data: {
        fun: 'runner.jobs.list_jobs_filter',
        jid: r.jid,
        user: 'alice',
        fun_args: [2, { filter_find_job: false }],
        _stamp: expect.any(String),
      },
    });
    expect(ret).toMatchObject({ subject: `ledger.run.${r.jid}.ret`, msgId: msgIds.runRet(r.jid) });
    expect(ret!.event).toEqual({
      type: 'runner.returned',
      tag: `salt/run/${r.jid}/ret`,
      data: { ...(pub!.event.data as object), _stamp: expect.any(String), return: r.return, success: true },
    });
  });

  it("an unknown function: Salt's text, success false, retcode 254, still recorded", async () => {
    const r = await ok('foo.bar');
    expect(r).toMatchObject({ return: "'foo.bar' is not available.", success: false, retcode: 254 });
    expect((await recorded(r.jid)).map((e) => e.event.data)).toEqual([
      expect.objectContaining({ fun: 'runner.foo.bar' }),
      expect.objectContaining({ return: "'foo.bar' is not available.", success: false, retcode: 254 }),
    ]);
  });

  it('bad arguments: "Passed invalid arguments" with the usage; an exception: "Exception occurred in runner"', async () => {
    const bad = await ok('jobs.lookup_jid');
    expect(bad.success).toBe(false);
    expect(bad.return).toMatch(
      /^\nPassed invalid arguments: lookup_jid\(\) missing 1 required positional argument: 'jid'\n\nUsage:\nReturn the printout/,
    );
    const raised = await ok('jobs.list_jobs', [], { start_time: 'yesterday' });
    expect(raised).toMatchObject({
      return: 'Exception occurred in runner jobs.list_jobs: ParserError: Unknown string format: yesterday',
      success: false,
      retcode: 1,
    });
  });

  it('a malformed request is refused and not recorded', async () => {
    const before = (await ledger.jsm.streams.info(STREAM)).state.messages;
    expect(await call('', [], {}, '{"arg": []}')).toMatchObject({ error: { code: 'VALIDATION' } });
    expect(await call('', [], {}, '{oops')).toMatchObject({
      error: { code: 'VALIDATION', message: expect.stringMatching(/^request is not a JSON document/) },
    });
    expect((await ledger.jsm.streams.info(STREAM)).state.messages).toBe(before);
  });
});

describe('jobs.list_jobs', () => {
  it("lists jobs keyed by jid, oldest first, with Salt's fields", async () => {
    const r = await ok('jobs.list_jobs');
    const ret = r.return as Record<string, Record<string, unknown>>;
    const jids = Object.keys(ret);
    expect(jids).toEqual([...fixture.map((j) => j.jid), SPECIAL.cmd, SPECIAL.noReturn, SPECIAL.out].sort());
    expect(ret[SPECIAL.cmd]).toEqual({
      Function: 'cmd.run',
      Arguments: ['echo hi'],
      Target: ['web1', 'web2', 'web3'],
      'Target-type': 'list',
      User: 'root',
      StartTime: formatJidInstance(SPECIAL.cmd, {}).StartTime,
    });
    expect(ret[fixture[0]!.jid]).toMatchObject({ Metadata: { ticket: 'T-0' }, User: 'alice' });
  });

  it('agrees with Salt’s in-memory filter semantics for every filter', async () => {
    const all = [...fixture, { jid: SPECIAL.cmd, fun: 'cmd.run', arg: ['echo hi'], tgt: ['web1', 'web2', 'web3'], tgt_type: 'list' }];
    const cases: ListJobsFilters[] = [
      { search_function: 'cmd.*' },
      { search_function: 'cmd.run' },
      { search_function: 'test.*,*.items' },
      { search_function: ['cmd.run_all', 'state.*'] },
      { search_function: '*.r?n*' },
      { search_function: '[cs]*' },
      { search_function: '[!c]*.*' },
      { search_target: 'web1' },
      { search_target: 'web*' },
      { search_target: '*' },
      { search_target: 'db?' },
      { search_target: 'web-(1)' },
      { search_target: 'web1,db2' },
      { search_metadata: { ticket: 'T-1' } },
      { search_metadata: { ticket: 'T-2', team: 'nope' } },
      { search_metadata: { team: 'ops' } },
      { search_metadata: 'ticket' },
      { start_time: '2026-11-01T03:00', end_time: '2026-11-01 06:00' },
      { start_time: formatJidInstance(fixture[10]!.jid, {}).StartTime },
      { end_time: formatJidInstance(fixture[10]!.jid, {}).StartTime },
      { search_function: 'cmd.*', search_target: 'web*', start_time: '2026, Nov 01 02:00' },
    ];
    const sizes: number[] = [];
    for (const f of cases) {
      const filters = normaliseListJobsFilters(f);
      const expected = all
        .filter((j) => matchesListJobs(j.jid, formatJidInstance(j.jid, { ...j, ...(j.metadata ? { metadata: j.metadata } : {}) }), filters))
        .map((j) => j.jid)
        .sort();
      const got = Object.keys((await ok('jobs.list_jobs', [], f as Record<string, unknown>)).return as object).filter(
        (jid) => jid !== SPECIAL.noReturn && jid !== SPECIAL.out,
      );
      expect(got, JSON.stringify(f)).toEqual(expected);
      sizes.push(expected.length);
    }
    console.log(`list_jobs filter cases: ${sizes.join(' ')} of ${all.length} jobs`);
    expect(sizes.filter((n) => n > 0 && n < all.length).length).toBeGreaterThan(cases.length - 4);
  });

  it('pages: the newest `limit` jobs, then by offset or page', async () => {
    const sorted = fixture.map((j) => j.jid).sort();
    const newest = [SPECIAL.cmd, SPECIAL.noReturn, SPECIAL.out];
    expect(Object.keys((await ok('jobs.list_jobs', [], { limit: 3 })).return as object)).toEqual(newest);
    expect(Object.keys((await ok('jobs.list_jobs', [], { limit: 3, offset: 3 })).return as object)).toEqual(sorted.slice(-3));
    expect(Object.keys((await ok('jobs.list_jobs', [], { limit: 3, page: 2 })).return as object)).toEqual(sorted.slice(-3));
    expect(await ok('jobs.list_jobs', [], { limit: 0 })).toMatchObject({
      success: false,
      return: expect.stringContaining('limit must be an integer from 1 to 100000'),
    });
  });

  it('the default page and the start_time / search_function filters read idx_jobs_start_time in order, without sorting', async () => {
    const client = await db.connect();
    try {
      // A table this small would be scanned and sorted otherwise; with these off, a Sort left in the plan
      // means the ORDER BY does not match the index.
      await client.query('SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off');
      for (const f of [{}, { start_time: '2026-11-01T03:00' }, { search_function: 'cmd.*' }]) {
        const q = listJobsSql({ filters: normaliseListJobsFilters(f), limit: 1000, offset: 0 });
        const plan = (await client.query<{ 'QUERY PLAN': string }>({ text: `EXPLAIN ${q.text}`, values: q.values })).rows
          .map((r) => r['QUERY PLAN'])
          .join('\n');
        expect(plan, JSON.stringify(f)).toContain('Index Scan using idx_jobs_start_time on jobs');
        expect(plan, JSON.stringify(f)).not.toContain('Sort');
      }
    } finally {
      await client.query('RESET enable_seqscan; RESET enable_bitmapscan; RESET enable_sort');
      client.release();
    }
  });

  it('outputter= wraps the answer for salt-run', async () => {
    const r = await ok('jobs.list_jobs', [], { search_function: 'nothing', outputter: 'json' });
    expect(r.return).toEqual({ outputter: 'json', data: {} });
  });
});

describe('looking up one job', () => {
  it('lookup_jid: returns per minion; missing=True names the silent expected ones; returned=False only those', async () => {
    expect((await ok('jobs.lookup_jid', [SPECIAL.cmd])).return).toEqual({ web1: '', web2: 'hi' });
    expect((await ok('jobs.lookup_jid', [SPECIAL.cmd], { missing: true })).return).toEqual({
      web1: '',
      web2: 'hi',
      web3: 'Minion did not return',
    });
    expect((await ok('jobs.lookup_jid', [SPECIAL.cmd], { missing: true, returned: false })).return).toEqual({
      web3: 'Minion did not return',
    });
    expect((await ok('jobs.lookup_jid', ['20200101000000000000'])).return).toEqual({});
    expect((await ok('jobs.lookup_jid', [SPECIAL.out])).return).toEqual({ outputter: 'highstate', data: { a: { s: { result: true } } } });
  });

  it('list_job and print_job: the record with Minions, Result (the full returns) and EndTime', async () => {
    const r = (await ok('jobs.list_job', [SPECIAL.cmd])).return as Record<string, unknown>;
    expect(r).toMatchObject({
      jid: SPECIAL.cmd,
      Function: 'cmd.run',
      Arguments: ['echo hi'],
      Target: ['web1', 'web2', 'web3'],
      'Target-type': 'list',
      User: 'root',
      Minions: ['web1', 'web2', 'web3'],
      StartTime: formatJidInstance(SPECIAL.cmd, {}).StartTime,
      EndTime: expect.stringMatching(/^2026, Nov \d\d \d\d:\d\d:\d\d\.\d{6}$/),
    });
    expect(r.Result).toEqual({
      web2: expect.objectContaining({ cmd: '_return', id: 'web2', return: 'hi' }),
      web1: expect.objectContaining({ id: 'web1', return: '' }),
    });
    const { jid: _jid, ...record } = r;
    expect((await ok('jobs.print_job', [SPECIAL.cmd])).return).toEqual({ [SPECIAL.cmd]: record });
    expect((await ok('jobs.print_job', ['20200101000000000000'])).return).toEqual({
      '20200101000000000000': {
        Error: 'Cannot contact returner or no job with this jid',
        StartTime: '2020, Jan 01 00:00:00.000000',
        Result: {},
      },
    });
  });

  it('exit_success: truthiness of each return; expected minions without one are false', async () => {
    expect((await ok('jobs.exit_success', [SPECIAL.cmd])).return).toEqual({ web1: false, web2: true, web3: false });
    expect((await ok('jobs.exit_success', [SPECIAL.noReturn])).return).toEqual({ a: false, b: false });
  });

  it('a jid given as a number is looked up as its text', async () => {
    expect((await ok('jobs.lookup_jid', [Number('20200101000000000000')])).success).toBe(true);
  });
});

describe('list_jobs_filter and last_run', () => {
  it('list_jobs_filter: the last count jobs oldest first, with JID, without saltutil.find_job unless asked', async () => {
    const r = (await ok('jobs.list_jobs_filter', [5])).return as Array<Record<string, unknown>>;
    expect(r.map((x) => x.JID)).toEqual(
      [...fixture.filter((j) => j.fun !== 'saltutil.find_job').map((j) => j.jid), SPECIAL.cmd, SPECIAL.noReturn, SPECIAL.out]
        .sort()
        .slice(-5),
    );
    expect(r[4]).toMatchObject({ Function: 'state.apply', JID: SPECIAL.out, StartTime: expect.any(String) });
    const withFind = (await ok('jobs.list_jobs_filter', [200], { filter_find_job: false })).return as unknown[];
    expect(withFind.length).toBe(fixture.length + 3);
  });

  it('last_run: print_job of the newest matching job; False when none or metadata is not a mapping', async () => {
    expect(Object.keys((await ok('jobs.last_run')).return as object)).toEqual([SPECIAL.out]);
    const lastCmd = (await ok('jobs.last_run', [], { function: 'cmd.*' })).return as Record<string, Record<string, unknown>>;
    expect(Object.keys(lastCmd)).toEqual([SPECIAL.cmd]);
    expect(lastCmd[SPECIAL.cmd]!.Result).toBeDefined();
    expect((await ok('jobs.last_run', [], { function: 'nothing.*' })).return).toBe(false);
    expect((await ok('jobs.last_run', [], { metadata: 'x' })).return).toBe(false);
  });
});

describe('jobs.active and jobs.master', () => {
  it("active: runs saltutil.running on '*' through the publish path and reports Running and Returned", async () => {
    const proc = { jid: SPECIAL.cmd, fun: 'cmd.run', arg: ['echo hi'], tgt: ['web1', 'web2', 'web3'], tgt_type: 'list', user: 'root' };
    runningReplies = { web3: [{ ...proc, pid: 4242 }], web4: "'saltutil.running' is not available." };
    const r = await ok('jobs.active');
    expect(published.at(-1)).toMatchObject({ tgt: '*', tgt_type: 'glob', fun: 'saltutil.running', user: 'alice' });
    expect(r.return).toEqual({
      [SPECIAL.cmd]: {
        Function: 'cmd.run',
        Arguments: ['echo hi'],
        Target: ['web1', 'web2', 'web3'],
        'Target-type': 'list',
        User: 'root',
        StartTime: formatJidInstance(SPECIAL.cmd, {}).StartTime,
        Running: [{ web3: 4242 }],
        Returned: ['web2', 'web1'],
      },
    });
  });

  it('active with no agents is {}', async () => {
    expect((await ok('jobs.active')).return).toEqual({});
  });

  it('master: the runner jobs running on this dispatcher, itself included', async () => {
    publishDelayMs = 800;
    runningReplies = { web1: [] };
    const active = ok('jobs.active');
    await new Promise((r) => setTimeout(r, 200));
    const m = await ok('jobs.master');
    const running = m.return as Array<Record<string, unknown>>;
    expect(running.map((x) => x.fun).sort()).toEqual(['runner.jobs.active', 'runner.jobs.master']);
    expect(running.find((x) => x.fun === 'runner.jobs.master')).toEqual({
      fun: 'runner.jobs.master',
      jid: m.jid,
      user: 'alice',
      fun_args: [],
      _stamp: expect.any(String),
      pid: process.pid,
    });
    await active;
  });
});

describe('large answers and the projector', () => {
  it('an answer larger than one message arrives whole in chunks; the ledger records that it was too large', async () => {
    const big = 'x'.repeat(400_000);
    const jids = [jidAt(20_000), jidAt(20_001), jidAt(20_002)];
    await seed(jids.map((jid) => ({ jid, fun: 'test.echo', arg: [big], tgt: 'big' })));
    try {
      const r = await ok('jobs.list_jobs', [], { search_target: 'big' });
      expect(Object.keys(r.return as object)).toEqual(jids);
      expect(((r.return as Record<string, { Arguments: string[] }>)[jids[0]!]!.Arguments[0] ?? '').length).toBe(400_000);
      const [, ret] = await recorded(r.jid);
      expect(ret!.event.data).toMatchObject({
        success: true,
        return: expect.stringMatching(/^ERROR: the return of runner\.jobs\.list_jobs is \d+ bytes/),
      });
    } finally {
      await db.query('DELETE FROM jobs WHERE jid = ANY($1)', [jids]);
    }
  });

  it('waits for the projector to apply what was on the stream when the call came', async () => {
    await db.query(`UPDATE projector_checkpoint SET last_seq = 0 WHERE name = 'projector'`);
    const started = Date.now();
    setTimeout(() => void db.query(`UPDATE projector_checkpoint SET last_seq = 1000000000 WHERE name = 'projector'`), 400);
    await ok('jobs.list_jobs', [], { limit: 1 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
  });

  it('without DATABASE_URL a function that reads the job cache fails with Salt’s exception text', async () => {
    const other = await startRunnerService({
      ledger,
      publish: fakePublish,
      clock: () => BigInt(Date.now()) * 1000n,
      logger: createLogger('runner-test', { level: 'silent' }),
      projectorConsumer: 'projector',
      queue: 'other',
    });
    await service.stop(); // only `other` answers now
    try {
      expect(await ok('jobs.list_jobs')).toMatchObject({
        success: false,
        return: 'Exception occurred in runner jobs.list_jobs: Error: DATABASE_URL is not set: the dispatcher cannot read the job cache',
      });
    } finally {
      await other.stop();
    }
  });
});
