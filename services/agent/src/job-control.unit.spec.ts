import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProcJobs, type JobControlHooks, type LocalJob } from './job-control.js';
import { ProcDir, type ProcEntry, type ProcFile } from './proc-files.js';
import { isAlive, jobEnv } from './processes.js';

let root: string;
let dir: ProcDir;
let jobs: ProcJobs;
let local: Map<string, LocalJob & { killedWith?: number; finishing: boolean; aborted: boolean }>;
let lost: ProcEntry[];
let signalled: Array<[string, number, number]>;
const children: ChildProcess[] = [];

let n = 0;
// Jids of this run only, so processes of another run never count.
const nextJid = () => `20260101${String(process.pid).padStart(8, '0')}${String(++n).padStart(4, '0')}`;

function proc(jid: string, pid: number, fun = 'cmd.run'): ProcFile {
  return { pid, fun, arg: [], tgt: 'm1', jid, ret: '', tgt_type: 'glob', user: 'root' };
}

/** A shell job's child: own process group, the job's marker in its environment. */
function child(jid: string, script = 'sleep 60'): ChildProcess {
  const c = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore', env: { ...process.env, ...jobEnv({ jid, id: 'm1' }) } });
  children.push(c);
  return c;
}

/** A job this process runs, as the agent registers it. */
function runLocal(p: ProcFile) {
  const job = {
    proc: p,
    aborted: false,
    finishing: false,
    killedWith: undefined as number | undefined,
    abort(signal: number) {
      job.aborted = true;
      job.killedWith = signal;
    },
  };
  local.set(p.jid, job);
  return job;
}

beforeEach(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'jobledger-jobs-'));
  dir = new ProcDir(path.join(root, 'proc'));
  await dir.init();
  local = new Map();
  lost = [];
  signalled = [];
  const hooks: JobControlHooks = {
    local: (jid) => local.get(jid),
    locals: () => [...local.values()],
    lost: async (entry) => {
      lost.push(entry);
      await dir.removeName(entry.name);
    },
    signalled: async (p, signal) => {
      signalled.push([p.jid, p.pid, signal]);
    },
  };
  jobs = new ProcJobs(dir, 'm1', hooks);
});

afterEach(() => {
  for (const c of children.splice(0)) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  rmSync(root, { recursive: true, force: true });
});

describe('ProcJobs: what runs', () => {
  it('lists jobs of this process and live child processes, by jid', async () => {
    const [a, b] = [nextJid(), nextJid()];
    const c = child(b);
    await dir.write(proc(b, c.pid!));
    const pa = proc(a, process.pid, 'test.sleep');
    runLocal(pa);
    await dir.write(pa);
    expect(await jobs.running()).toEqual([pa, proc(b, c.pid!)]);
    expect(await jobs.find(b)).toEqual(proc(b, c.pid!));
    expect(lost).toEqual([]);
  });

  it('a job of this process without its proc file yet runs, is found and can be signalled; not once it is ending', async () => {
    const jid = nextJid();
    const p = proc(jid, process.pid, 'test.sleep');
    const job = runLocal(p);
    expect(await jobs.running()).toEqual([p]);
    expect(await jobs.find(jid)).toEqual(p);
    expect(await jobs.signal(jid, 15)).toEqual({ kind: 'sent', pid: process.pid });
    expect(job.killedWith).toBe(15);
    expect(signalled).toEqual([[jid, process.pid, 15]]);
    expect(await jobs.running()).toEqual([]);
    const ending = runLocal(proc(nextJid(), process.pid, 'test.sleep'));
    ending.finishing = true;
    expect(await jobs.running()).toEqual([]);
    expect(await jobs.find(ending.proc.jid)).toBeUndefined();
    expect(lost).toEqual([]);
  });

  it('the pid of a job of this process is the one it holds now (the child spawned after the file was written)', async () => {
    const jid = nextJid();
    const p = proc(jid, process.pid);
    runLocal(p);
    await dir.write(p);
    const c = child(jid);
    p.pid = c.pid!;
    expect(await jobs.find(jid)).toMatchObject({ pid: c.pid });
  });

  it('a proc file whose process is gone (no job of this process) is removed and its job recorded as lost', async () => {
    const jid = nextJid();
    const c = child(jid, 'exit 0');
    await new Promise((resolve) => c.once('exit', resolve));
    await dir.write(proc(jid, c.pid!));
    expect(await jobs.find(jid)).toBeUndefined();
    expect(lost.map((e) => e.data?.jid)).toEqual([jid]);
    expect(existsSync(dir.file(jid))).toBe(false);
  });

  it("a live pid that is not the job's (no marker) or the agent's own pid with no job here: stale", async () => {
    const [a, b] = [nextJid(), nextJid()];
    const other = child('another-jid');
    await dir.write(proc(a, other.pid!));
    await dir.write(proc(b, process.pid, 'test.sleep'));
    expect(await jobs.running()).toEqual([]);
    expect(lost.map((e) => e.data?.jid).sort()).toEqual([a, b]);
    expect(await isAlive(other.pid!)).toBe(true);
  });

  it('a corrupt proc file is stale; temporary files of a write in progress are left alone', async () => {
    writeFileSync(path.join(dir.dir, 'garbage'), '{not json');
    writeFileSync(path.join(dir.dir, '.x.1.tmp'), '{}');
    expect(await jobs.running()).toEqual([]);
    expect(lost).toEqual([{ name: 'garbage' }]);
    expect(existsSync(path.join(dir.dir, '.x.1.tmp'))).toBe(true);
  });

  it('a job of this process that is ending, or whose child is dead, is not listed and not recorded as lost', async () => {
    const [a, b] = [nextJid(), nextJid()];
    const pa = proc(a, process.pid, 'test.sleep');
    runLocal(pa).finishing = true;
    await dir.write(pa);
    const c = child(b, 'exit 0');
    await new Promise((resolve) => c.once('exit', resolve));
    const pb = proc(b, c.pid!);
    runLocal(pb);
    await dir.write(pb);
    expect(await jobs.running()).toEqual([]);
    expect(lost).toEqual([]);
    expect(existsSync(dir.file(a)) && existsSync(dir.file(b))).toBe(true);
  });

  it('a file read before its job ended here and forgot it is not taken for a stale one', async () => {
    const jid = nextJid();
    const p = proc(jid, process.pid, 'test.sleep');
    await dir.write(p);
    // The job removed its file, then forgot the job: the reader finds neither.
    const entry = await dir.read(jid);
    await dir.remove(jid);
    expect(entry?.data).toEqual(p);
    expect(await jobs.find(jid)).toBeUndefined();
    expect(lost).toEqual([]);
  });
});

describe('ProcJobs: signals', () => {
  it('a child process job: SIGKILL to its tree, recorded, and then it no longer runs', async () => {
    const jid = nextJid();
    const c = child(jid, 'sleep 60; echo hehe');
    const p = proc(jid, c.pid!);
    runLocal(p);
    await dir.write(p);
    const exited = new Promise((resolve) => c.once('exit', (_code, signal) => resolve(signal)));
    expect(await jobs.signal(jid, 9)).toEqual({ kind: 'sent', pid: c.pid });
    expect(signalled).toEqual([[jid, c.pid, 9]]);
    expect(await exited).toBe('SIGKILL');
    expect(await jobs.find(jid)).toBeUndefined();
    expect(lost).toEqual([]);
  });

  it('a job inside the agent is aborted with the signal, at the agent pid', async () => {
    const jid = nextJid();
    const p = proc(jid, process.pid, 'test.sleep');
    const job = runLocal(p);
    await dir.write(p);
    expect(await jobs.signal(jid, 15)).toEqual({ kind: 'sent', pid: process.pid });
    expect(job.killedWith).toBe(15);
    expect(signalled).toEqual([[jid, process.pid, 15]]);
    expect(await jobs.find(jid)).toBeUndefined();
  });

  it('an unknown jid, or a stale file: unknown (the file is cleaned up)', async () => {
    expect(await jobs.signal(nextJid(), 9)).toEqual({ kind: 'unknown' });
    const jid = nextJid();
    await dir.write(proc(jid, process.pid));
    expect(await jobs.signal(jid, 9)).toEqual({ kind: 'unknown' });
    expect(lost.map((e) => e.data?.jid)).toEqual([jid]);
    expect(signalled).toEqual([]);
  });
});
