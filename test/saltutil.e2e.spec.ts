// saltutil job control (Salt reference §8) through the real CLI: jobs that find, list and signal
// other jobs on the agents, each an ordinary job with its own jid, events and rows.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CliHome, alive } from './support/cli.js';

const home = new CliHome('jobledger-saltutil-e2e-');
const USER = process.env.SUDO_USER ? `sudo_${process.env.SUDO_USER}` : os.userInfo().username;

async function runAsync(...args: string[]): Promise<string> {
  const r = await home.run(['run', ...args, '--async']);
  expect(r.stderr).toBe('');
  const jid = /^Executed command with job ID: (\d{20})\n$/.exec(r.stdout)?.[1];
  expect(jid, r.stdout).toBeDefined();
  return jid!;
}

/** `run … --out json`, parsed. */
async function runJson(...args: string[]): Promise<Record<string, unknown>> {
  const r = await home.run(['run', ...args, '--out', 'json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Polls until `check` gives something other than undefined/false. */
async function eventually<T>(check: () => Promise<T | undefined | false>, ms = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function readProc(pid: number | string, file: string): string {
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'latin1');
  } catch {
    return '';
  }
}

/** A NUL-separated `/proc` file (cmdline, environ) as a list. */
function procList(pid: number | string, file: 'cmdline' | 'environ'): string[] {
  return readProc(pid, file).split('\0').slice(0, -1);
}

/** Live processes carrying the job's marker in their environment, with their command lines. */
function processesOfJob(jid: string): Array<{ pid: number; cmdline: string }> {
  return fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n) && alive(Number(n)))
    .filter((n) => procList(n, 'environ').includes(`JOBLEDGER_JID=${jid}`))
    .map((n) => ({ pid: Number(n), cmdline: procList(n, 'cmdline').join(' ') }));
}

/** Salt's nested rendering of one agent's proc record (colours off). */
function nestedRecord(id: string, p: { arg: string; fun: string; jid: string; pid: number }): string {
  return [
    `${id}:`,
    '    ----------',
    '    arg:',
    `        - ${p.arg}`,
    '    fun:',
    `        ${p.fun}`,
    '    jid:',
    `        ${p.jid}`,
    '    pid:',
    `        ${p.pid}`,
    '    ret:',
    '    tgt:',
    `        ${id}`,
    '    tgt_type:',
    '        glob',
    '    user:',
    `        ${USER}`,
    '',
  ].join('\n');
}

/** The proc record find_job prints for a job once it has started (the first call normally finds it). */
async function findStarted(id: string, jid: string): Promise<{ stdout: string; pid: number }> {
  return eventually(
    async () => {
      const r = await home.run(['run', id, 'saltutil.find_job', jid]);
      expect(r.code).toBe(0);
      const pid = /^ {4}pid:\n {8}(\d+)$/m.exec(r.stdout)?.[1];
      return pid !== undefined && { stdout: r.stdout, pid: Number(pid) };
    },
    10_000,
    `find_job ${jid} to show the job`,
  );
}

interface ProcRow {
  pid: number;
  state: string;
  outcome: string | null;
  signal: number | null;
  retcode: number | null;
}

async function procEvents(jid: string, id: string) {
  return home.query<{ seq: string; tag: string; data: Record<string, unknown> }>(
    `select id as seq, tag, data from salt_events where tag like $1 order by id`,
    [`salt/job/${jid}/%/${id}%`],
  );
}

beforeAll(async () => {
  await home.up(['web1', 'web2']);
}, 200_000);

afterEach(async (ctx) => {
  // A failed test must not leave its jobs running into the next one.
  if (ctx.task.result?.state === 'fail') await home.run(['run', '*', 'saltutil.kill_all_jobs']);
});

afterAll(() => home.downAndRemove(), 120_000);

describe('saltutil job control, as Salt', () => {
  it("cmd.run 'sleep 1000; echo hehe' --async → find_job shows a live pid → kill_job → the sleep is gone → find_job {}", async () => {
    const jid = await runAsync('web1', 'cmd.run', 'sleep 1000; echo hehe');

    const found = await findStarted('web1', jid);
    const pid = found.pid;
    expect(found.stdout).toBe(nestedRecord('web1', { arg: 'sleep 1000; echo hehe', fun: 'cmd.run', jid, pid }));
    // The pid is the job's shell, running the command, in the job's process tree.
    expect(alive(pid)).toBe(true);
    expect(procList(pid, 'cmdline')).toEqual(['/bin/sh', '-c', 'sleep 1000; echo hehe']);
    expect(procList(pid, 'environ')).toContain(`JOBLEDGER_JID=${jid}`);
    const sleeps = await eventually(async () => {
      const s = processesOfJob(jid).filter((p) => p.cmdline === 'sleep 1000');
      return s.length === 1 && s;
    });
    expect(readProc(sleeps[0]!.pid, 'stat')).toMatch(new RegExp(`^\\d+ \\(sleep\\) \\S (${pid}) `));

    const kill = await home.run(['run', 'web1', 'saltutil.kill_job', jid]);
    expect(kill).toEqual({ code: 0, stdout: `web1:\n    Signal 9 sent to job ${jid} at pid ${pid}\n`, stderr: '' });
    expect(alive(pid)).toBe(false);
    expect(processesOfJob(jid)).toEqual([]);
    expect(
      fs
        .readdirSync('/proc')
        .filter((n) => /^\d+$/.test(n))
        .some((n) => readProc(n, 'cmdline').includes('sleep 1000') && readProc(n, 'environ').includes(`JOBLEDGER_JID=${jid}`)),
    ).toBe(false);

    expect(await home.run(['run', 'web1', 'saltutil.find_job', jid])).toEqual({ code: 0, stdout: 'web1:\n    ----------\n', stderr: '' });

    // In the ledger: proc.started, proc.signalled (9, by the agent that sent it), proc.ended
    // (signalled, 9) — and, as Salt's minion for a SIGKILLed job, no return.
    expect((await home.run(['db', 'wait'])).code).toBe(0);
    const events = await procEvents(jid, 'web1');
    expect(events.map((e) => e.tag)).toEqual([
      `salt/job/${jid}/proc/web1/started`,
      `salt/job/${jid}/proc/web1/signalled`,
      `salt/job/${jid}/proc/web1/ended`,
    ]);
    expect(events[1]!.data).toMatchObject({ jid, id: 'web1', fun: 'cmd.run', pid, signal: 9 });
    expect(events[2]!.data).toMatchObject({ jid, id: 'web1', fun: 'cmd.run', pid, outcome: 'signalled', signal: 9 });
    expect(await home.query<ProcRow>('select pid, state, outcome, signal, retcode from procs where jid = $1', [jid])).toEqual([
      { pid, state: 'ended', outcome: 'signalled', signal: 9, retcode: null },
    ]);
    expect(await home.query('select id from salt_returns where jid = $1', [jid])).toEqual([]);

    // The find_job and kill_job calls were jobs of their own, with their returns.
    const calls = await home.query<{ fun: string; return: unknown }>(
      `select fun, return from salt_returns where fun in ('saltutil.kill_job', 'saltutil.find_job') and full_ret->'fun_args' = $1::jsonb order by alter_time`,
      [JSON.stringify([jid])],
    );
    expect(calls.at(-2)).toEqual({ fun: 'saltutil.kill_job', return: `Signal 9 sent to job ${jid} at pid ${pid}` });
    expect(calls.at(-1)).toEqual({ fun: 'saltutil.find_job', return: {} });
  });

  it('term_job ends an in-process test.sleep 1000 (signal 15, no return) and leaves the agent running', async () => {
    const jid = await runAsync('web1', 'test.sleep', '1000');
    const { stdout, pid } = await findStarted('web1', jid);
    expect(stdout).toBe(nestedRecord('web1', { arg: '1000', fun: 'test.sleep', jid, pid }));
    // In-process: the pid is web1's agent process.
    expect([...home.pids.values()]).toContain(pid);
    expect(procList(pid, 'environ')).toContain('JOBLEDGER_AGENT_IDS=web1');

    const term = await home.run(['run', 'web1', 'saltutil.term_job', jid]);
    expect(term).toEqual({ code: 0, stdout: `web1:\n    Signal 15 sent to job ${jid} at pid ${pid}\n`, stderr: '' });
    expect(await home.run(['run', 'web1', 'saltutil.find_job', jid])).toEqual({ code: 0, stdout: 'web1:\n    ----------\n', stderr: '' });
    expect(alive(pid)).toBe(true);
    expect(await runJson('web1', 'test.ping')).toEqual({ web1: true });

    expect((await home.run(['db', 'wait'])).code).toBe(0);
    const events = await procEvents(jid, 'web1');
    expect(events.map((e) => e.tag.split('/').at(-1))).toEqual(['started', 'signalled', 'ended']);
    expect(events[1]!.data).toMatchObject({ pid, signal: 15 });
    expect(events[2]!.data).toMatchObject({ pid, outcome: 'signalled', signal: 15 });
    expect(await home.query<ProcRow>('select pid, state, outcome, signal, retcode from procs where jid = $1', [jid])).toEqual([
      { pid, state: 'ended', outcome: 'signalled', signal: 15, retcode: null },
    ]);
    expect(await home.query('select id from salt_returns where jid = $1', [jid])).toEqual([]);
  });

  it("running lists the id's jobs but not itself; is_running 'cmd.*' keeps cmd.run; kill_all_jobs ends them", async () => {
    const shell = await runAsync('web1', 'cmd.run', 'sleep 1001');
    const inproc = await runAsync('web1', 'test.sleep', '1001');
    await findStarted('web1', shell);
    await findStarted('web1', inproc);

    const r = await home.run(['run', '-v', 'web1', 'saltutil.running', '--out', 'json']);
    expect(r.code).toBe(0);
    const self = /^Executing job with jid (\d{20})\n/.exec(r.stdout)?.[1];
    const running = (JSON.parse(r.stdout.split('\n').slice(3).join('\n')) as { web1: Array<Record<string, unknown>> }).web1;
    expect(running.map((p) => p.jid)).toEqual([shell, inproc]);
    expect(running.map((p) => p.jid)).not.toContain(self);
    for (const p of running) expect(Object.keys(p).sort()).toEqual(['arg', 'fun', 'jid', 'pid', 'ret', 'tgt', 'tgt_type', 'user']);
    expect(running[0]).toMatchObject({ fun: 'cmd.run', arg: ['sleep 1001'], tgt: 'web1', tgt_type: 'glob', ret: '', user: USER });
    expect(running[1]).toMatchObject({ fun: 'test.sleep', arg: [1001] });

    const cmds = (await runJson('web1', 'saltutil.is_running', 'cmd.*')) as { web1: Array<{ jid: string }> };
    expect(cmds.web1.map((p) => p.jid)).toEqual([shell]);
    expect(await runJson('web1', 'saltutil.is_running', 'grains.*')).toEqual({ web1: [] });
    expect(await runJson('web2', 'saltutil.running')).toEqual({ web2: [] });

    const shellPid = running[0]!.pid as number;
    const agentPid = running[1]!.pid as number;
    expect(await runJson('web1', 'saltutil.kill_all_jobs')).toEqual({
      web1: [`Signal 9 sent to job ${shell} at pid ${shellPid}`, `Signal 9 sent to job ${inproc} at pid ${agentPid}`],
    });
    expect(await runJson('web1', 'saltutil.running')).toEqual({ web1: [] });
    expect(processesOfJob(shell)).toEqual([]);
    expect(alive(agentPid)).toBe(true);
  });

  it("one jid on two agents: kill_job on web1 ends web1's processes only", async () => {
    const jid = await runAsync('*', 'cmd.run', 'sleep 1003');
    const web1 = (await findStarted('web1', jid)).pid;
    const web2 = (await findStarted('web2', jid)).pid;
    expect(web1).not.toBe(web2);

    const kill = await home.run(['run', 'web1', 'saltutil.kill_job', jid]);
    expect(kill.stdout).toBe(`web1:\n    Signal 9 sent to job ${jid} at pid ${web1}\n`);
    expect(await runJson('web1', 'saltutil.find_job', jid)).toEqual({ web1: {} });
    expect(await runJson('web2', 'saltutil.find_job', jid)).toEqual({ web2: expect.objectContaining({ jid, pid: web2 }) });
    expect(alive(web1)).toBe(false);
    expect(alive(web2)).toBe(true);
    expect(processesOfJob(jid).map((p) => p.cmdline)).toContain('sleep 1003');

    expect((await home.run(['run', 'web2', 'saltutil.kill_job', jid])).stdout).toBe(
      `web2:\n    Signal 9 sent to job ${jid} at pid ${web2}\n`,
    );
    expect(processesOfJob(jid)).toEqual([]);
  });

  it("signal_job takes a signal's name; an unknown jid gives ''; an invalid signal is an error", async () => {
    const jid = await runAsync('web2', 'cmd.run', 'sleep 1002');
    const { pid } = await findStarted('web2', jid);
    const sig = await home.run(['run', 'web2', 'saltutil.signal_job', jid, 'SIGTERM']);
    expect(sig).toEqual({ code: 0, stdout: `web2:\n    Signal 15 sent to job ${jid} at pid ${pid}\n`, stderr: '' });
    await eventually(async () => processesOfJob(jid).length === 0, 5_000, 'the job processes to end');
    expect(await home.run(['run', 'web2', 'saltutil.kill_job', jid])).toEqual({ code: 0, stdout: 'web2:\n', stderr: '' });

    const bad = await home.run(['run', 'web2', 'saltutil.signal_job', jid, 'SIGFOO']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe("web2:\n    ERROR: Invalid signal: 'SIGFOO'\n");
  });

  it('a proc file whose pid is gone is removed when running reads it, and its job recorded as lost', async () => {
    const dead = spawnSync('/bin/true').pid;
    const jid = '20200101000000000001';
    const dir = path.join(home.root, 'agents', 'web2', 'proc');
    const file = path.join(dir, jid);
    const record = { pid: dead, fun: 'cmd.run', arg: ['sleep 5'], tgt: 'web2', jid, ret: '', tgt_type: 'glob', user: USER };
    fs.writeFileSync(file, JSON.stringify(record));

    expect(await runJson('web2', 'saltutil.running')).toEqual({ web2: [] });
    expect(fs.existsSync(file)).toBe(false);
    expect((await home.run(['db', 'wait'])).code).toBe(0);
    const events = await procEvents(jid, 'web2');
    expect(events.map((e) => e.tag)).toEqual([`salt/job/${jid}/proc/web2/ended`]);
    expect(events[0]!.data).toMatchObject({ jid, id: 'web2', fun: 'cmd.run', pid: dead, outcome: 'lost' });
  });
});
