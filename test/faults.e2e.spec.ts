// The fault suite: real processes of a ledger started with `up --standby`, killed with SIGKILL
// by pid at seeded random moments of a burst of `test.ping` jobs. Afterwards every job the CLI
// had acknowledged (printed its jid) has each targeted id's return in salt_returns exactly once,
// or, for an agent killed while answering, a `proc.ended` of outcome `lost` (never run twice);
// and `audit verify` is OK. Each scenario prints one line: expected, found, lost, duplicated
// and the seed (JOBLEDGER_FAULT_SEED=<seed> replays the same kill moments and victims).
//
// The ledger's PostgreSQL is one the suite starts itself (`up` is given its DATABASE_URL), so
// that it can be stopped and started again on the same data directory and port, as an
// operator's database server is.
//
// In `npm test` a bounded part runs (24 ids, 12 jobs, 3 kills per scenario); `npm run faults`
// (JOBLEDGER_FAULTS=full) runs the size: 100 ids in 4 processes, 100 jobs (10,000
// returns), 20 kills per scenario.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, startPostgres, type PostgresHandle } from '../packages/cli/src/embedded/postgres.js';
import { MASTER_UNREACHABLE } from '@jobledger/runtime/ledger-client';
import { alive, CliHome } from './support/cli.js';
import { reportFault as report, type Tally } from './support/fault-line.js';
import { until } from './support/until.js';

const FULL = process.env.JOBLEDGER_FAULTS === 'full';
const IDS = FULL ? 'fault-[001-100]' : 'fault-[01-24]';
const ID_COUNT = FULL ? 100 : 24;
const JOBS = FULL ? 100 : 12;
const KILLS = FULL ? 20 : 3;
const PUBLISHERS = 2; // CLI processes publishing at once (the machine has 2 cores)
const PG_DOWN_MS = FULL ? 60_000 : 8_000;
const SEED = Number(process.env.JOBLEDGER_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: a small seeded generator, so a seed replays the same kills. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const home = new CliHome('jobledger-faults-');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobledger-faults-pg-'));
let database: PostgresHandle | undefined;

beforeAll(async () => {
  fs.chmodSync(pgDir, 0o755); // PostgreSQL runs as its own user when the suite runs as root
  database = await startPostgres({ dataDir: path.join(pgDir, 'data') });
  const url = await createDatabase(database.url, 'jobledger');
  const up = await home.run(['up', '--detach', '--standby', '--agents', IDS, '--agent-processes', '4'], {
    env: { DATABASE_URL: url },
    timeoutMs: 180_000,
  });
  expect(up.stderr).toBe('');
  expect(up.code).toBe(0);
  home.databaseUrl = url;
  process.stdout.write(`fault suite: ${FULL ? 'full' : 'bounded'}, seed ${SEED} (JOBLEDGER_FAULT_SEED=${SEED} replays it)\n`);
}, 240_000);

afterAll(async () => {
  home.pids = home.recordedPids();
  await home.downAndRemove();
  await database?.stop();
  fs.rmSync(pgDir, { recursive: true, force: true });
}, 120_000);

/** Publishes JOBS `test.ping` jobs to every id, PUBLISHERS at a time; the jids acknowledged. */
async function burst(): Promise<{ acknowledged: string[]; refused: number }> {
  const acknowledged: string[] = [];
  let refused = 0;
  let next = 0;
  // JOBS acknowledged, or three times as many attempts: a refused run (a server being
  // restarted) does not shorten the burst the kills fall into.
  const worker = async () => {
    while (acknowledged.length < JOBS && next < 3 * JOBS) {
      next++;
      const r = await home.run(['run', '--async', 'fault-*', 'test.ping'], { timeoutMs: 60_000 });
      const jid = /^Executed command with job ID: (\d{20})$/m.exec(r.stdout)?.[1];
      if (r.code === 0 && jid) acknowledged.push(jid);
      else {
        refused++;
        if (process.env.JOBLEDGER_FAULT_DEBUG) process.stdout.write(`refused: ${r.stderr}${r.stdout}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: PUBLISHERS }, worker));
  return { acknowledged, refused };
}

/** Kills KILLS times, at seeded moments, a live process whose recorded name `victims` picks. */
async function killAtRandom(rand: () => number, victims: (name: string) => boolean, stop: () => boolean): Promise<number> {
  let kills = 0;
  while (kills < KILLS && !stop()) {
    await sleep(300 + rand() * (FULL ? 2_500 : 1_200));
    const candidates = [...home.recordedPids()].filter(([name, pid]) => victims(name) && alive(pid)).sort();
    if (candidates.length === 0) continue; // all of them are being restarted
    const [, pid] = candidates[Math.floor(rand() * candidates.length)]!;
    try {
      process.kill(pid, 'SIGKILL');
      kills++;
    } catch {
      // it died on its own meanwhile
    }
  }
  return kills;
}

/** Waits until salt_returns holds every return of the jids (or a lost record), then tallies. */
async function settled(jids: string[], on = home, ids = ID_COUNT): Promise<Tally> {
  let t: Tally | undefined;
  await until(
    'every return projected or recorded lost',
    async () => {
      t = await tally(jids, on, ids);
      return t.found - t.duplicated + t.lost >= t.expected ? t : undefined;
    },
    180_000,
  ).catch(() => undefined);
  return t ?? tally(jids, on, ids);
}

async function auditOk(on = home): Promise<void> {
  // A nats-server killed last in a round may still be restarting (up waits 1 s): the CLI then
  // says Salt's "Failed to connect to the Master" and exits 2. Asked again until it is back.
  let verify = await on.run(['audit', 'verify'], { timeoutMs: 300_000 });
  for (let i = 0; i < 30 && verify.code === 2 && verify.stderr.includes(MASTER_UNREACHABLE); i++) {
    await new Promise((r) => setTimeout(r, 1_000));
    verify = await on.run(['audit', 'verify'], { timeoutMs: 300_000 });
  }
  expect(verify.stdout, verify.stderr).toMatch(/^audit verify: OK: /m);
}

/** The postmaster and its children (the pids whose parent it is). */
function postgresProcesses(): number[] {
  const master = database!.pid;
  const children = fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return Number(fs.readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]) === master;
      } catch {
        return false;
      }
    })
    .map(Number);
  return [master, ...children];
}

async function tally(jids: string[], on = home, ids = ID_COUNT): Promise<Tally> {
  const [r] = await on.query<{ found: string; distinct: string }>(
    'select count(*) as found, count(distinct (jid, id)) as distinct from salt_returns where jid = any($1)',
    [jids],
  );
  // Lost: ended without a return, and no return row for that pair.
  const [l] = await on.query<{ lost: string }>(
    `select count(*) as lost from procs p where p.jid = any($1) and p.outcome = 'lost'
       and not exists (select 1 from salt_returns r where r.jid = p.jid and r.id = p.id)`,
    [jids],
  );
  const found = Number(r!.found);
  return { expected: jids.length * ids, found, lost: Number(l!.lost), duplicated: found - Number(r!.distinct) };
}

const scenarios: Array<{ name: string; victims: (name: string) => boolean; mayLose: boolean }> = [
  { name: 'projector', victims: (n) => n.startsWith('projector'), mayLose: false },
  { name: 'dispatcher', victims: (n) => n.startsWith('dispatcher'), mayLose: false },
  { name: 'agent process', victims: (n) => /^agent-\d+$/.test(n), mayLose: true },
  { name: 'nats-server', victims: (n) => n === 'nats-server', mayLose: false },
];

describe('kill -9 during a burst of returns', () => {
  scenarios.forEach((s, i) => {
    it(
      `${s.name}: every acknowledged job's returns projected exactly once`,
      async () => {
        const rand = random(SEED + i);
        let done = false;
        const killing = killAtRandom(rand, s.victims, () => done);
        const { acknowledged, refused } = await burst();
        done = true;
        const kills = await killing;
        expect(acknowledged.length).toBeGreaterThan(0);

        // Let the restarted processes drain what was published meanwhile.
        const t = await settled(acknowledged);
        report(s.name, SEED + i, `kills ${kills}`, acknowledged.length, refused, t);
        expect(t.duplicated).toBe(0);
        expect(t.found - t.duplicated + t.lost).toBe(t.expected);
        if (!s.mayLose) expect(t.lost).toBe(0);
        await auditOk();
      },
      FULL ? 1_200_000 : 300_000,
    );
  });
});

/**
 * A burst with PostgreSQL taken away a second into it by `away` (which gives it back before it
 * returns): every acknowledged job's returns projected once once it is back, and `audit verify` OK.
 */
async function burstWithDatabaseAway(name: string, away: () => Promise<void>): Promise<void> {
  const publishing = burst();
  await sleep(1_000);
  const gone = Date.now();
  await away();
  const back = Date.now();
  const { acknowledged, refused } = await publishing;
  const t = await settled(acknowledged);
  report(
    name,
    undefined,
    `${((back - gone) / 1000).toFixed(1)} s, drained ${((Date.now() - back) / 1000).toFixed(1)} s after it was back`,
    acknowledged.length,
    refused,
    t,
  );
  expect(acknowledged.length).toBeGreaterThan(0);
  expect(t).toMatchObject({ found: t.expected, lost: 0, duplicated: 0 });
  await auditOk();
}

describe('PostgreSQL and consumers taken away', () => {
  it(
    `PostgreSQL stopped for ${PG_DOWN_MS / 1000} s in the middle of a burst, then started again: nothing lost, the backlog drains`,
    () =>
      burstWithDatabaseAway('postgresql stopped', async () => {
        const { port } = database!;
        await database!.stop();
        try {
          await sleep(PG_DOWN_MS);
        } finally {
          database = await startPostgres({ dataDir: path.join(pgDir, 'data'), port });
        }
      }),
    600_000,
  );

  it(
    `PostgreSQL frozen (SIGSTOP) for ${PG_DOWN_MS / 1000} s in the middle of a burst: nothing lost, the backlog drains`,
    () =>
      burstWithDatabaseAway('postgresql frozen', async () => {
        const frozen = postgresProcesses();
        for (const pid of frozen) process.kill(pid, 'SIGSTOP');
        try {
          await sleep(PG_DOWN_MS);
        } finally {
          for (const pid of frozen) process.kill(pid, 'SIGCONT');
        }
      }),
    600_000,
  );

  it('durable consumers deleted under the running agents and projectors: recreated and reading within 5 s', async () => {
    const nc = await connect(home.natsOptions());
    try {
      const jsm = await jetstreamManager(nc);
      const durables = async () =>
        (await jsm.consumers.list('LEDGER').next())
          .map((c) => c.config.durable_name)
          .filter((n): n is string => !!n)
          .sort();
      const before = await durables();
      expect(before.length).toBeGreaterThan(1);
      const t0 = Date.now();
      for (const name of before) {
        // nats-server 2.9 may fail a delete racing the consumer's own writes ("unlinkat …:
        // directory not empty"); deleted is what the scenario needs, so it is asked again.
        for (let attempt = 1; ; attempt++) {
          try {
            await jsm.consumers.delete('LEDGER', name);
            break;
          } catch (err) {
            if (attempt === 5 || !(await durables()).includes(name)) break;
            process.stdout.write(`consumers deleted: deleting ${name} again after: ${(err as Error).message}\n`);
            await sleep(200);
          }
        }
      }
      await until('every durable consumer recreated', async () => ((await durables()).join() === before.join() ? true : undefined), 5_000);
      const recreatedMs = Date.now() - t0;
      // Reading again: a job published now is answered by every id and projected.
      const r = await home.run(['run', '--async', 'fault-*', 'test.ping']);
      const jid = /job ID: (\d{20})/.exec(r.stdout)![1]!;
      const t = await settled([jid]);
      const readingMs = Date.now() - t0;
      report(
        'consumers deleted',
        undefined,
        `${before.length} durables recreated in ${recreatedMs} ms, a job answered and projected ${readingMs} ms after the deletion`,
        1,
        0,
        t,
      );
      expect(t).toMatchObject({ found: t.expected, lost: 0, duplicated: 0 });
      expect(readingMs).toBeLessThan(15_000);
    } finally {
      await nc.close();
    }
  }, 120_000);
});

/** The parent pid of `pid`, from /proc. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

describe('an agent process killed in the middle of a job', () => {
  it("kill -9 during `cmd.run 'sleep 30'`: proc.ended outcome lost on its restart, the job not run twice", async () => {
    const id = FULL ? 'fault-001' : 'fault-01';
    const r = await home.run(['run', '--async', id, 'cmd.run', 'sleep 30']);
    const jid = /job ID: (\d{20})/.exec(r.stdout)![1]!;
    const started = await until(
      'the job started',
      async () =>
        (await home.query<{ pid: number }>("select pid from procs where jid = $1 and id = $2 and state = 'running'", [jid, id]))[0],
      30_000,
    );
    // The agent process hosting the id: the job's shell is its child.
    const agents = new Map([...home.recordedPids()].filter(([name]) => /^agent-\d+$/.test(name)).map(([name, pid]) => [pid, name]));
    let host: number | undefined = started.pid;
    while (host !== undefined && host > 1 && !agents.has(host)) host = parentOf(host);
    expect(host !== undefined && agents.has(host), `no agent process above job pid ${started.pid}`).toBe(true);
    process.kill(host!, 'SIGKILL');
    const killed = Date.now();

    const ended = await until(
      'proc.ended projected',
      async () =>
        (
          await home.query<{ outcome: string | null }>('select outcome from procs where jid = $1 and id = $2 and outcome is not null', [
            jid,
            id,
          ])
        )[0],
      60_000,
    );
    const recordedMs = Date.now() - killed;
    // The restarted agent answers; the job's message, redelivered to it, did not start the job again.
    const ping = await home.run(['run', id, 'test.ping'], { timeoutMs: 60_000 });
    expect(ping.stdout).toMatch(new RegExp(`^${id}:\\n {4}True$`, 'm'));
    const [events] = await home.query<{ started: string; ended: string }>(
      `select count(*) filter (where tag = $2) as started, count(*) filter (where tag = $3) as ended from salt_events where tag like $1`,
      [`salt/job/${jid}/proc/${id}/%`, `salt/job/${jid}/proc/${id}/started`, `salt/job/${jid}/proc/${id}/ended`],
    );
    const t = await tally([jid], home, 1);
    report(
      'agent killed during a job',
      undefined,
      `cmd.run 'sleep 30' on ${id}, recorded ${ended.outcome} ${(recordedMs / 1000).toFixed(1)} s after the kill, started ${events!.started} time(s)`,
      1,
      0,
      t,
    );
    expect(ended.outcome).toBe('lost');
    expect(events).toEqual({ started: '1', ended: '1' });
    expect(t).toMatchObject({ expected: 1, found: 0, lost: 1, duplicated: 0 });
    await until('the orphaned job process killed', () => !alive(started.pid) || undefined, 10_000);
    await auditOk();
  }, 180_000);
});

/** Writes `file` until its filesystem has no byte left. */
function fillDisk(file: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let chunk = Buffer.alloc(1 << 20); ;) {
      try {
        fs.writeSync(fd, chunk);
      } catch {
        if (chunk.length <= 4096) return;
        chunk = Buffer.alloc(chunk.length / 4);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

// Mounting a small tmpfs under the store takes root (as CI runs); elsewhere this is skipped.
describe.skipIf(process.getuid?.() !== 0)('the disk of the single nats-server filled', () => {
  it('publishes are refused with a clear error, nothing acknowledged is lost, service resumes when space returns', async () => {
    const disk = new CliHome('jobledger-disk-full-');
    const store = path.join(disk.root, 'nats');
    fs.mkdirSync(store);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', store]);
    try {
      await disk.up(['full-[1-4]']);
      const acknowledged: string[] = [];
      const refusals: string[] = [];
      const publish = async () => {
        const r = await disk.run(['run', '--async', 'full-*', 'test.ping'], { timeoutMs: 60_000 });
        const jid = /^Executed command with job ID: (\d{20})$/m.exec(r.stdout)?.[1];
        if (r.code === 0 && jid) acknowledged.push(jid);
        else refusals.push(r.stderr + r.stdout);
        return r;
      };
      for (let i = 0; i < 3; i++) await publish();

      const t0 = Date.now();
      fillDisk(path.join(store, 'filler'));
      await until(
        'a publish refused because the store is full',
        async () => /^ERROR: the ledger's storage is full: /m.test((await publish()).stderr) || undefined,
        90_000,
      );
      const refusedMs = Date.now() - t0;
      fs.rmSync(path.join(store, 'filler'));
      const freed = Date.now();
      await until('publishes accepted again', async () => (await publish()).code === 0 || undefined, 90_000);
      const resumedMs = Date.now() - freed;
      for (let i = 0; i < 3; i++) await publish();

      const t = await settled(acknowledged, disk, 4);
      report(
        'nats-server disk full',
        undefined,
        `refused ${(refusedMs / 1000).toFixed(1)} s after the disk filled, accepted again ${(resumedMs / 1000).toFixed(1)} s after space returned`,
        acknowledged.length,
        refusals.length,
        t,
      );
      expect(
        refusals.some((r) => /^ERROR: the ledger's storage is full: /m.test(r)),
        refusals.join('\n'),
      ).toBe(true);
      expect(t).toMatchObject({ found: t.expected, lost: 0, duplicated: 0 });
      await auditOk(disk);
      disk.pids = disk.recordedPids();
      await disk.run(['down']);
    } finally {
      execFileSync('umount', ['-l', store]);
      disk.remove();
    }
  }, 600_000);
});
