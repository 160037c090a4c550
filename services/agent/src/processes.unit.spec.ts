import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  carriesJobMarker,
  descendants,
  isAlive,
  jobEnv,
  parseSignal,
  processesOfJob,
  signalProcessTree,
  terminates,
  type JobOfAgent,
} from './processes.js';

// A jid of this test only, so processes of another test (or run) never count.
let n = 0;
let JOB: JobOfAgent;
let THEIRS: JobOfAgent;
beforeEach(() => {
  const jid = `20260101${String(process.pid).padStart(8, '0')}${String(++n).padStart(4, '0')}`;
  JOB = { jid, id: 'web1' };
  THEIRS = { jid, id: 'web2' };
});
const children: ChildProcess[] = [];

/** `sh -c script` in its own process group, carrying the job marker, as a shell job runs. */
function shellJob(script: string, job: JobOfAgent = JOB): ChildProcess {
  const child = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore', env: { ...process.env, ...jobEnv(job) } });
  children.push(child);
  return child;
}

async function until<T>(check: () => Promise<T | undefined | false>, ms = 5_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await delay(20);
  }
}

afterEach(async () => {
  // Every process a test started, also those that left their group (setsid).
  const left = [...(await processesOfJob(JOB)), ...(await processesOfJob(THEIRS))];
  for (const target of [...children.splice(0).map((c) => -c.pid!), ...left]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

describe('isAlive', () => {
  it('is true for a running process, false for a pid that does not exist or is not a pid', async () => {
    expect(await isAlive(process.pid)).toBe(true);
    expect(await isAlive(2 ** 22 + 1)).toBe(false);
    expect(await isAlive(0)).toBe(false);
    expect(await isAlive(-1)).toBe(false);
  });

  it('is false for a zombie (a dead child its parent never reaps)', async () => {
    // sh forks `true`, then execs `sleep`, which never waits for it: `true` stays a zombie.
    const job = shellJob('true & exec sleep 30');
    const [zombie] = await until(async () => {
      const d = await descendants(job.pid!);
      return d.length === 1 && !(await isAlive(d[0]!)) && d;
    });
    expect(await isAlive(job.pid!)).toBe(true);
    expect(await isAlive(zombie!)).toBe(false);
  });
});

describe('descendants, job markers', () => {
  it('finds children and grandchildren, and the processes carrying a jid', async () => {
    const job = shellJob('sh -c "sleep 31 & wait" & sleep 32 & wait');
    const tree = await until(async () => {
      const d = await descendants(job.pid!);
      return d.length === 3 && d;
    });
    expect(tree).not.toContain(job.pid);
    for (const p of tree) expect(await carriesJobMarker(p, JOB)).toBe(true);
    expect(await carriesJobMarker(job.pid!, { jid: 'another', id: 'web1' })).toBe(false);
    expect(await carriesJobMarker(job.pid!, THEIRS)).toBe(false);
    expect((await processesOfJob(JOB)).sort()).toEqual([job.pid!, ...tree].sort());
    expect(await carriesJobMarker(process.pid, JOB)).toBe(false);
  });
});

describe('signalProcessTree', () => {
  it('SIGKILL reaches the job process, its descendants and a process that left its group', async () => {
    // `setsid` puts the last sleep in a session of its own: out of the group, still a descendant
    // until its parent dies, and always carrying the marker.
    const job = shellJob('sleep 41 & setsid sleep 42 & sleep 43; echo done');
    const tree = await until(async () => {
      const d = await descendants(job.pid!);
      return d.length === 3 && d;
    });
    const exited = new Promise((resolve) => job.once('exit', (_code, signal) => resolve(signal)));
    expect(await signalProcessTree(job.pid!, JOB, 9)).toBe(true);
    expect(await exited).toBe('SIGKILL');
    await until(async () => (await Promise.all(tree.map(isAlive))).every((a) => !a));
    expect(await processesOfJob(JOB)).toEqual([]);
  });

  it('leaves alone the same jid run as another agent id', async () => {
    const mine = shellJob('sleep 44');
    const theirs = shellJob('setsid sleep 45 & wait', THEIRS);
    const [other] = await until(async () => {
      const d = await descendants(theirs.pid!);
      return d.length === 1 && d;
    });
    expect(await signalProcessTree(mine.pid!, JOB, 9)).toBe(true);
    await until(async () => !(await isAlive(mine.pid!)));
    expect(await isAlive(theirs.pid!)).toBe(true);
    expect(await isAlive(other!)).toBe(true);
    expect(await processesOfJob(THEIRS)).toHaveLength(2);
  });

  it('reports failure for a pid that is gone, and never signals the agent itself', async () => {
    const job = shellJob('exit 0');
    const pid = job.pid!;
    await new Promise((resolve) => job.once('exit', resolve));
    expect(await signalProcessTree(pid, JOB, 15)).toBe(false);
    expect(await signalProcessTree(process.pid, JOB, 9)).toBe(false);
    expect(await signalProcessTree(1, JOB, 9)).toBe(false);
  });
});

describe('parseSignal, terminates', () => {
  it.each([
    [9, 9],
    ['9', 9],
    [' 15 ', 15],
    ['SIGTERM', 15],
    ['TERM', 15],
    ['sigkill', 9],
    ['kill', 9],
    ['HUP', 1],
    [0, 0],
    [64, 64],
  ])('%j → %d', (input, expected) => {
    expect(parseSignal(input)).toBe(expected);
  });

  it.each([[65], [-1], [1.5], ['SIGFOO'], [''], ['9x'], [null], [true], [[9]]])('%j is not a signal', (input) => {
    expect(parseSignal(input)).toBeUndefined();
  });

  it('only signals whose default action ends a process end an in-agent job', () => {
    for (const s of [1, 2, 3, 6, 9, 10, 12, 13, 14, 15, 34, 64]) expect(terminates(s)).toBe(true);
    for (const s of [0, 17, 18, 19, 20, 21, 22, 23, 28]) expect(terminates(s)).toBe(false);
  });
});
