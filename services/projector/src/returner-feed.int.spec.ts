// Salt's master_job_cache and event_return fed from the ledger, against the real things: the
// test's nats-server, the run's PostgreSQL for the projector's own tables (checkpoints), and a
// SECOND PostgreSQL started here as the pgjsonb target — stopped for a few seconds in the middle
// of a burst and started again on the same port and data directory.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeEvent,
  runnerJobLoad,
  runnerReturnedTag,
  type LedgerEvent,
  type Returner,
  type ReturnLoad,
  type RunnerReturned,
} from '@jobledger/core';
import { ReturnerRegistry } from '@jobledger/returners';
import { migrateDatabase, type Logger } from '@jobledger/runtime';
import { createDatabase, startPostgres, type PostgresHandle } from '../../../packages/cli/src/embedded/postgres.js';
import { freshDatabase } from '../../../test/support/servers.js';
import {
  append,
  lastSeq,
  MASTER_ID,
  newJid,
  procStarted,
  published,
  readStream,
  returned,
  rows,
  stamp,
  waitFor,
  world,
  type World,
} from '../test/support.js';
import { parseMasterReturnersConfig } from './master-config.js';
import { publishLoad } from './projections.js';
import { startReturnerFeeds, type ReturnerFeeds, type ReturnerSource } from './returner-feed.js';

let w: World;
let target: PostgresHandle | undefined;
let targetDataDir: string;
let targetPort: number;
let targetPassword: string;
const pools: pg.Pool[] = [];
const running: ReturnerFeeds[] = [];

beforeAll(async () => {
  w = await world('returner_feed');
  await migrateDatabase(w.databaseUrl);
  targetDataDir = path.join(w.dir, 'pg-target', 'data');
  target = await startPostgres({ dataDir: targetDataDir });
  targetPort = target.port;
  targetPassword = readFileSync(path.join(w.dir, 'pg-target', 'pg-password'), 'utf8').trim();
});

afterAll(async () => {
  await Promise.allSettled(running.map((f) => f.stop()));
  await Promise.allSettled(pools.map((p) => p.end()));
  await target?.stop();
  await w?.close();
});

/** A database on the target server, and a pool on it. */
async function targetDatabase(name: string): Promise<pg.Pool> {
  const url = await createDatabase(target!.url, name);
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => undefined); // the server is stopped on purpose
  pools.push(pool);
  return pool;
}

function pgjsonbOptions(db: string): Record<string, unknown> {
  return {
    'returner.pgjsonb.host': '127.0.0.1',
    'returner.pgjsonb.port': targetPort,
    'returner.pgjsonb.user': 'postgres',
    'returner.pgjsonb.pass': targetPassword,
    'returner.pgjsonb.db': db,
  };
}

/** A logger whose lines the test reads. */
function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

/** The registry, counting the calls each returner gets. */
function countingSource(registry: ReturnerRegistry, calls: Map<string, number>): ReturnerSource {
  const count = (key: string) => calls.set(key, (calls.get(key) ?? 0) + 1);
  return {
    async get(name, opts) {
      const r = await registry.get(name, opts);
      const wrapped: Returner = {
        returner: async (ret: ReturnLoad) => {
          await r.returner(ret);
          count(`ret:${ret.jid}:${ret.id}`);
        },
      };
      if (r.saveLoad) {
        const saveLoad = r.saveLoad.bind(r);
        wrapped.saveLoad = async (jid, load, minions) => {
          await saveLoad(jid, load, minions);
          count(`load:${jid}`);
        };
      }
      if (r.eventReturn) wrapped.eventReturn = r.eventReturn.bind(r);
      return wrapped;
    },
    closeAll: () => registry.closeAll(),
  };
}

async function startFeeds(
  mapping: Record<string, unknown>,
  logger: Logger,
  opts: {
    databaseUrl?: string;
    batch?: number;
    calls?: Map<string, number>;
    source?: ReturnerSource;
    callTimeoutMs?: number;
    stopGraceMs?: number;
  } = {},
): Promise<ReturnerFeeds> {
  const pool = new pg.Pool({ connectionString: opts.databaseUrl ?? w.databaseUrl, max: 2 });
  pools.push(pool);
  const returners = parseMasterReturnersConfig(mapping, 'master.yaml');
  const registry = new ReturnerRegistry({ role: 'master', hostId: MASTER_ID, config: returners.mapping, logger });
  const feeds = await startReturnerFeeds(
    {
      natsUrl: w.nats.url,
      stream: 'LEDGER',
      masterId: MASTER_ID,
      returners,
      backoff: { minMs: 100, maxMs: 1_000 },
      ...(opts.batch === undefined ? {} : { batch: opts.batch }),
      ...(opts.callTimeoutMs === undefined ? {} : { callTimeoutMs: opts.callTimeoutMs }),
      ...(opts.stopGraceMs === undefined ? {} : { stopGraceMs: opts.stopGraceMs }),
    },
    pool,
    opts.source ?? (opts.calls ? countingSource(registry, opts.calls) : registry),
    logger,
  );
  running.push(feeds);
  return feeds;
}

const checkpoint = async (name: string, db: pg.Pool = w.db) =>
  Number((await rows<{ last_seq: string }>(db, 'SELECT last_seq FROM projector_checkpoint WHERE name = $1', [name]))[0]?.last_seq ?? 0);

/** Jobs with returns from `minions` ids each, appended publication first. */
async function burst(jobs: number, minions: number): Promise<{ jid: string; minions: string[] }[]> {
  const out: { jid: string; minions: string[] }[] = [];
  for (let j = 0; j < jobs; j++) {
    const jid = newJid();
    const ids = Array.from({ length: minions }, (_, i) => `minion-${i}`);
    await append(w.ledger, published(jid, { minions: ids, fun: 'cmd.run', arg: [`echo ${j}`] }));
    await append(w.ledger, ...ids.flatMap((id) => [procStarted(jid, id, 100 + j), returned(jid, id, `${jid}/${id}`, { fun: 'cmd.run' })]));
    out.push({ jid, minions: ids });
  }
  return out;
}

function runnerReturned(jid: string): RunnerReturned {
  return {
    type: 'runner.returned',
    tag: runnerReturnedTag(jid),
    data: { fun: 'runner.jobs.list_jobs', jid, user: 'alice', fun_args: [], _stamp: stamp(), return: { listed: 0 }, success: true },
  };
}

/** Every event in the stream so far, decoded, with its sequence. */
async function streamEvents(): Promise<{ seq: number; event: LedgerEvent }[]> {
  return (await readStream(w.ledger, 1, await lastSeq(w.ledger))).map((m) => ({ seq: m.seq, event: decodeEvent(m.data) }));
}

describe('master_job_cache fed into pgjsonb', () => {
  it('holds the events while the target PostgreSQL is down and stores each load and return exactly once when it is back', async () => {
    const salt = await targetDatabase('salt');
    const mapping = { master_job_cache: 'pgjsonb', ...pgjsonbOptions('salt') };
    const { logger, lines } = capturingLogger();
    const feeds = await startFeeds(mapping, logger);
    const feed = feeds.feeds[0]!;
    expect(feed.name).toBe('master_job_cache:pgjsonb');

    // given a burst of jobs, and a runner job
    const before = await burst(20, 10);
    const runJid = newJid();
    const run = runnerReturned(runJid);
    await append(w.ledger, run);
    await waitFor('first events in pgjsonb', async () => feed.position() > 0);

    // when the target is stopped, more jobs come in, and it comes back ~5 s later on the same port and data
    await target!.stop();
    const outageStarted = Date.now();
    const during = await burst(10, 10);
    const end = await lastSeq(w.ledger);
    await new Promise((r) => setTimeout(r, 5_000));
    expect(feed.position()).toBeLessThan(end);
    expect(await checkpoint(feed.name)).toBeLessThan(end);
    target = await startPostgres({ dataDir: targetDataDir, port: targetPort });
    await waitFor('the feed at the end of the stream', async () => (await checkpoint(feed.name)) === end, 30_000);

    // then every return and load is in salt_returns / jids exactly once
    const jobs = [...before, ...during];
    const returnsTotal = jobs.reduce((n, j) => n + j.minions.length, 0) + 1;
    const dupes = await rows(salt, 'SELECT jid, id, count(*)::int AS n FROM salt_returns GROUP BY jid, id HAVING count(*) > 1');
    expect(dupes).toEqual([]);
    const returns = await rows<{ jid: string; id: string; full_ret: Record<string, unknown> }>(
      salt,
      'SELECT jid, id, full_ret FROM salt_returns',
    );
    expect(returns).toHaveLength(returnsTotal);
    const byKey = new Map(returns.map((r) => [`${r.jid}/${r.id}`, r.full_ret]));
    const events = await streamEvents();
    for (const { event } of events) {
      if (event.type === 'job.returned') expect(byKey.get(`${event.data.jid}/${event.data.id}`)).toEqual(event.data);
    }
    expect(byKey.get(`${runJid}/${MASTER_ID}`)).toEqual(runnerJobLoad(MASTER_ID, run.data));
    const loads = await rows<{ jid: string; load: Record<string, unknown> }>(salt, 'SELECT jid, load FROM jids ORDER BY jid');
    expect(loads).toHaveLength(jobs.length + 1);
    const published = new Map(
      events.flatMap(({ event }) => (event.type === 'job.published' ? [[event.data.jid, publishLoad(event.data)]] : [])),
    );
    for (const l of loads) expect(l.load).toEqual(l.jid === runJid ? runnerJobLoad(MASTER_ID, run.data) : published.get(l.jid));

    // and the outage was logged once, with its end, its length and the events that waited
    const loud = lines.filter((l) => (l.level as number) >= 40);
    const down = loud.filter((l) => l.msg === 'returner target unavailable; holding its events and retrying');
    expect(down).toHaveLength(1);
    expect(down[0]).toMatchObject({ level: 50, feed: 'master_job_cache:pgjsonb', returner: 'pgjsonb' });
    expect(JSON.stringify(down[0])).not.toContain('minion-'); // no payload
    const back = loud.filter((l) => l.msg === 'returner target back; feed resumed');
    expect(back).toHaveLength(1);
    expect(back[0]!.failures as number).toBeGreaterThan(1); // retried (at debug level) until it came back
    expect(back[0]!.outageMs as number).toBeGreaterThanOrEqual(4_000);
    expect(back[0]!.outageMs as number).toBeLessThanOrEqual(Date.now() - outageStarted);
    expect(back[0]!.eventsWaiting as number).toBeGreaterThan(0);
    await feeds.stop();
  }, 90_000);

  it('resumes from its checkpoint after the projector is stopped in the middle: every call once', async () => {
    const salt2 = await targetDatabase('salt2');
    // A projector database of its own, so this feed starts with no checkpoint: the whole stream.
    const projectorDb = await freshDatabase('returner_feed_resume');
    await migrateDatabase(projectorDb);
    const projectorPool = new pg.Pool({ connectionString: projectorDb, max: 1 });
    pools.push(projectorPool);
    await burst(40, 25);
    const end = await lastSeq(w.ledger);
    const mapping = { master_job_cache: 'pgjsonb', ...pgjsonbOptions('salt2') };
    const calls = new Map<string, number>();
    const { logger, lines } = capturingLogger();

    // given a feed stopped once part of the stream is taken
    const first = await startFeeds(mapping, logger, { databaseUrl: projectorDb, batch: 20, calls });
    await waitFor('part of the stream taken', () => first.feeds[0]!.position() > end / 4, 30_000);
    await first.stop();
    const stoppedAt = await checkpoint('master_job_cache:pgjsonb', projectorPool);
    expect(stoppedAt).toBe(first.feeds[0]!.position());
    expect(stoppedAt).toBeLessThan(end);

    // when a new one starts
    const second = await startFeeds(mapping, logger, { databaseUrl: projectorDb, batch: 20, calls });
    await waitFor('the end of the stream', async () => (await checkpoint('master_job_cache:pgjsonb', projectorPool)) === end, 30_000);
    await second.stop();

    // then it started right after the checkpoint, and every load and return was handed over exactly once
    const starts = lines.filter((l) => l.msg === 'returner feed started').map((l) => l.fromSeq);
    expect(starts).toEqual([1, stoppedAt + 1]);
    const events = (await streamEvents()).filter(({ seq }) => seq <= end);
    const expected = new Map<string, number>();
    for (const { event } of events) {
      if (event.type === 'job.published') expected.set(`load:${event.data.jid}`, 1);
      if (event.type === 'job.returned') expected.set(`ret:${event.data.jid}:${event.data.id}`, 1);
      if (event.type === 'runner.returned') {
        expected.set(`load:${event.data.jid}`, 1);
        expected.set(`ret:${event.data.jid}:${MASTER_ID}`, 1);
      }
    }
    expect(Object.fromEntries(calls)).toEqual(Object.fromEntries(expected));
    const stored = await rows<{ n: number }>(salt2, 'SELECT count(*)::int AS n FROM salt_returns');
    expect(stored[0]!.n).toBe([...expected.keys()].filter((k) => k.startsWith('ret:')).length);
  }, 90_000);
});

describe('event_return fed into rawfile_json', () => {
  it('every event passing the whitelist and blacklist, one line each, in stream order', async () => {
    const file = path.join(w.dir, 'events.jsonl');
    const jid = newJid();
    await append(w.ledger, published(jid, { minions: ['a', 'b'] }), procStarted(jid, 'a', 1), returned(jid, 'a', 1), returned(jid, 'b', 2));
    await append(w.ledger, runnerReturned(newJid()));
    const end = await lastSeq(w.ledger);
    const mapping = {
      event_return: 'rawfile_json',
      'rawfile_json.filename': file,
      event_return_whitelist: ['salt/job/*', 'salt/run/*/ret'],
      event_return_blacklist: ['salt/job/*/proc/*'],
    };
    const { logger } = capturingLogger();
    const feeds = await startFeeds(mapping, logger);
    await waitFor('the end of the stream', async () => (await checkpoint('event_return:rawfile_json')) === end, 30_000);
    await feeds.stop();

    const wanted = (tag: string) =>
      (/^salt\/job\//.test(tag) && !/^salt\/job\/[^/]*\/proc\//.test(tag)) || /^salt\/run\/[^/]+\/ret$/.test(tag);
    const expected = (await streamEvents())
      .filter(({ event }) => wanted(event.tag))
      .map(({ event }) => ({ tag: event.tag, data: event.data }));
    const text = readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.slice(0, -1).split('\n');
    const got = lines.map((l) => JSON.parse(l) as unknown);
    expect(got).toEqual(expected);
    // Salt's json.dumps form, one document a line: {"tag": "…", "data": {…}}
    lines.forEach((l, i) => expect(l.startsWith(`{"tag": ${JSON.stringify(expected[i]!.tag)}, "data": {"`)).toBe(true));
    // this test's own events, by tag
    expect(got.map((e) => (e as { tag: string }).tag).filter((t) => t.includes(jid))).toEqual([
      `salt/job/${jid}/new`,
      `salt/job/${jid}/ret/a`,
      `salt/job/${jid}/ret/b`,
    ]);
  }, 60_000);
});

/** A projector database of its own whose feed `name` starts after everything in the stream so far. */
async function projectorDatabaseAtEnd(db: string, name: string): Promise<{ url: string; pool: pg.Pool; start: number }> {
  const url = await freshDatabase(db);
  await migrateDatabase(url);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pools.push(pool);
  const start = await lastSeq(w.ledger);
  await pool.query('INSERT INTO projector_checkpoint (name, last_seq) VALUES ($1, $2)', [name, start]);
  return { url, pool, start };
}

/** A returner source with one in-memory returner, `mem`, whose calls the test sees and steers. */
function memorySource(returner: Returner): ReturnerSource {
  return {
    get: async (name) => {
      if (name !== 'mem') throw new Error(`no returner ${name}`);
      return returner;
    },
    closeAll: async () => undefined,
  };
}

describe('stopping and hung targets', () => {
  it("a stop between a runner job's save_load and returner leaves the checkpoint before it: the returner call is made at the next start", async () => {
    const { url, pool, start } = await projectorDatabaseAtEnd('returner_feed_pair', 'master_job_cache:mem');
    const jid = newJid();
    const runJid = newJid();
    await append(w.ledger, published(jid, { minions: ['m1'] }), runnerReturned(runJid), returned(jid, 'm1', true));
    const runSeq = start + 2;
    const calls: string[] = [];
    let stopping: Promise<void> | undefined;
    const first: { feeds?: ReturnerFeeds } = {};
    const mem: Returner = {
      saveLoad: async (j) => {
        calls.push(`load:${j}`);
        // the projector is stopped while the runner job's save_load runs
        if (j === runJid && stopping === undefined) stopping = first.feeds!.stop();
      },
      returner: async (ret) => void calls.push(`ret:${ret.jid}:${ret.id}`),
    };
    const { logger } = capturingLogger();
    first.feeds = await startFeeds({ master_job_cache: 'mem' }, logger, { databaseUrl: url, source: memorySource(mem) });
    await waitFor('the stop', () => stopping !== undefined);
    await stopping;
    expect(calls).toEqual([`load:${jid}`, `load:${runJid}`]);
    expect(await checkpoint('master_job_cache:mem', pool)).toBe(runSeq - 1);

    const again = await startFeeds({ master_job_cache: 'mem' }, logger, { databaseUrl: url, source: memorySource(mem) });
    await waitFor('the end of the stream', async () => (await checkpoint('master_job_cache:mem', pool)) === start + 3);
    await again.stop();
    // the runner job's pair again (save_load stores the same load), then the rest
    expect(calls.slice(2)).toEqual([`load:${runJid}`, `ret:${runJid}:${MASTER_ID}`, `ret:${jid}:m1`]);
  }, 30_000);

  it('a call that hangs fails (retryable) after the call timeout and is made again', async () => {
    const { url, pool, start } = await projectorDatabaseAtEnd('returner_feed_timeout', 'master_job_cache:mem');
    const jid = newJid();
    await append(w.ledger, published(jid, { minions: ['m1'] }), returned(jid, 'm1', true));
    let attempts = 0;
    const mem: Returner = {
      saveLoad: async () => undefined,
      returner: async () => {
        if (++attempts === 1) await new Promise<void>(() => undefined); // the target hangs once
      },
    };
    const { logger, lines } = capturingLogger();
    const feeds = await startFeeds({ master_job_cache: 'mem' }, logger, {
      databaseUrl: url,
      source: memorySource(mem),
      callTimeoutMs: 300,
    });
    await waitFor('the end of the stream', async () => (await checkpoint('master_job_cache:mem', pool)) === start + 2, 15_000);
    await feeds.stop();
    expect(attempts).toBe(2);
    const down = lines.filter((l) => l.msg === 'returner target unavailable; holding its events and retrying');
    expect(down).toMatchObject([{ level: 50, seq: start + 2, error: "'mem.returner' did not finish within 300 ms" }]);
    expect(lines.filter((l) => l.msg === 'returner target back; feed resumed')).toHaveLength(1);
  }, 30_000);

  it('stop() abandons a call still running after the grace period and records only what was taken', async () => {
    const { url, pool, start } = await projectorDatabaseAtEnd('returner_feed_abandon', 'master_job_cache:mem');
    const jid = newJid();
    await append(w.ledger, published(jid, { minions: ['m1'] }), returned(jid, 'm1', true));
    let entered = false;
    const mem: Returner = {
      saveLoad: async () => undefined,
      returner: () => {
        entered = true;
        return new Promise<void>(() => undefined); // never answers
      },
    };
    const { logger, lines } = capturingLogger();
    // a returner that does not close either (its pool waits for the hung query)
    const source: ReturnerSource = { ...memorySource(mem), closeAll: () => new Promise<void>(() => undefined) };
    const feeds = await startFeeds({ master_job_cache: 'mem' }, logger, { databaseUrl: url, source, stopGraceMs: 300 });
    await waitFor('the hanging call', () => entered);
    const t0 = Date.now();
    await feeds.stop();
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(feeds.feeds[0]!.position()).toBe(start + 1);
    expect(await checkpoint('master_job_cache:mem', pool)).toBe(start + 1);
    expect(lines.filter((l) => l.msg === 'returner call still running at the end of the stop grace period; abandoned')).toMatchObject([
      { seq: start + 2, stopGraceMs: 300 },
    ]);
    expect(lines.filter((l) => l.msg === 'returners still closing after the stop grace period; not waited for')).toHaveLength(1);
  }, 30_000);
});

describe("clean_old_jobs of the master's job cache", () => {
  it('local_cache: a job older than keep_jobs_seconds is removed at the next loop_interval', async () => {
    const { url, pool, start } = await projectorDatabaseAtEnd('returner_feed_clean', 'master_job_cache:local_cache');
    const cachedir = path.join(w.dir, 'master-cache');
    const jid = newJid();
    await append(w.ledger, published(jid, { minions: ['m1'] }), returned(jid, 'm1', true));
    const h = createHash('sha256').update(jid).digest('hex');
    const jobDir = path.join(cachedir, 'jobs', h.slice(0, 2), h.slice(2));
    const mapping = { master_job_cache: 'local_cache', cachedir, keep_jobs_seconds: 1, loop_interval: 0.2 };
    const { logger } = capturingLogger();
    const feeds = await startFeeds(mapping, logger, { databaseUrl: url });
    await waitFor('the job in the cache', async () => (await checkpoint('master_job_cache:local_cache', pool)) === start + 2);
    expect(existsSync(path.join(jobDir, 'jid'))).toBe(true);
    // when it is older than keep_jobs_seconds, the next clean removes it
    await waitFor('the job removed from the cache', () => !existsSync(jobDir), 10_000);
    await feeds.stop();
  }, 30_000);

  it('a clean_old_jobs that fails is logged at each interval and the feed goes on', async () => {
    const { url, pool, start } = await projectorDatabaseAtEnd('returner_feed_clean_fail', 'master_job_cache:mem');
    let cleans = 0;
    const mem: Returner = {
      saveLoad: async () => undefined,
      returner: async () => undefined,
      cleanOldJobs: async () => {
        cleans++;
        throw new Error('disk on fire');
      },
    };
    const { logger, lines } = capturingLogger();
    const feeds = await startFeeds({ master_job_cache: 'mem', keep_jobs_seconds: 60, loop_interval: 0.1 }, logger, {
      databaseUrl: url,
      source: memorySource(mem),
    });
    await waitFor('two cleans', () => cleans >= 2);
    const jid = newJid();
    await append(w.ledger, published(jid, { minions: ['m1'] }));
    await waitFor('the feed going on', async () => (await checkpoint('master_job_cache:mem', pool)) === start + 1);
    await feeds.stop();
    const failed = lines.filter((l) => l.msg === 'clean_old_jobs failed; tried again at the next interval');
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect(failed[0]).toMatchObject({ level: 50, error: 'disk on fire' });
    // no clean with retention off
    const off = await projectorDatabaseAtEnd('returner_feed_clean_off', 'master_job_cache:mem');
    cleans = 0;
    const quiet = await startFeeds({ master_job_cache: 'mem', keep_jobs_seconds: 0, loop_interval: 0.1 }, logger, {
      databaseUrl: off.url,
      source: memorySource(mem),
    });
    await new Promise((r) => setTimeout(r, 500));
    await quiet.stop();
    expect(cleans).toBe(0);
  }, 30_000);
});

describe('configuration errors at start', () => {
  it("a returner without a function its role needs, or no such returner, stops the start in Salt's words", async () => {
    const { logger } = capturingLogger();
    await expect(startFeeds({ master_job_cache: 'rawfile_json' }, logger)).rejects.toThrow(
      "master_job_cache: 'rawfile_json.save_load' returner function not implemented yet. (master.yaml)",
    );
    await expect(startFeeds({ event_return: 'nosuch' }, logger)).rejects.toThrow(
      "event_return: Returner nosuch.returner could not be loaded: 'nosuch.returner' is not available. (master.yaml)",
    );
  });
});
