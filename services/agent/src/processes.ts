import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';

/**
 * Environment variables every job process carries — the jid, and the agent id it runs as (one jid
 * runs on many ids, maybe on the same machine) — so the agent can recognise a job's processes.
 */
export const JOB_ENV_MARKER = 'JOBLEDGER_JID';
export const JOB_ENV_AGENT = 'JOBLEDGER_AGENT_ID';

/** The job of one agent id: whose processes carry `JOBLEDGER_JID=<jid>` and `JOBLEDGER_AGENT_ID=<id>`. */
export interface JobOfAgent {
  jid: string;
  id: string;
}

/** The environment entries that mark the processes of `job`. */
export function jobEnv(job: JobOfAgent): Record<string, string> {
  return { [JOB_ENV_MARKER]: job.jid, [JOB_ENV_AGENT]: job.id };
}

/** `/proc/<pid>/stat` split after the command name: [state, ppid, pgrp, …]. */
async function statFields(pid: number): Promise<string[] | undefined> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may itself contain spaces or parentheses.
  return stat
    .slice(stat.lastIndexOf(')') + 2)
    .trim()
    .split(' ');
}

/**
 * Whether `pid` is a running process. A zombie (`Z`: dead, waiting to be reaped — which an
 * orphan on a machine whose PID 1 never reaps stays forever) or a dying task (`X`) is not.
 */
export async function isAlive(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const state = (await statFields(pid))?.[0];
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/** Whether the process `pid` carries the marks of `job` in its environment (unreadable: no). */
export async function carriesJobMarker(pid: number, job: JobOfAgent): Promise<boolean> {
  try {
    const environ = (await readFile(`/proc/${pid}/environ`, 'latin1')).split('\0');
    return Object.entries(jobEnv(job)).every(([k, v]) => environ.includes(`${k}=${v}`));
  } catch {
    return false;
  }
}

async function allPids(): Promise<number[]> {
  const names = await readdir('/proc').catch(() => [] as string[]);
  return names.filter((n) => /^\d+$/.test(n)).map(Number);
}

/** Every descendant of `pid` (children, their children, …), read from `/proc/<n>/stat`. */
export async function descendants(pid: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  await Promise.all(
    (await allPids()).map(async (p) => {
      const ppid = Number((await statFields(p))?.[1]);
      if (!Number.isInteger(ppid) || ppid <= 0) return;
      const list = children.get(ppid);
      if (list) list.push(p);
      else children.set(ppid, [p]);
    }),
  );
  const out: number[] = [];
  const queue = [pid];
  const seen = new Set(queue);
  for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
    for (const c of children.get(p) ?? []) {
      if (seen.has(c)) continue;
      seen.add(c);
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** Every process whose environment carries the job's marks (a job's processes that left its tree, too). */
export async function processesOfJob(job: JobOfAgent): Promise<number[]> {
  const out: number[] = [];
  await Promise.all(
    (await allPids()).map(async (p) => {
      if (p !== process.pid && (await carriesJobMarker(p, job))) out.push(p);
    }),
  );
  return out;
}

function kill(target: number, signal: number): boolean {
  try {
    process.kill(target, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Sends `signal` to the whole process tree of a job run by the child process `pid`: its process
 * group, every descendant (found before anything is signalled, as an orphan loses its parent
 * link), every process carrying the job's marks, then `pid` itself — Salt's `signal_job`
 * (psutil children, then the pid). Never the agent's own process. Returns whether `pid` (or its
 * group) could be signalled, i.e. `false` when sending failed.
 */
export async function signalProcessTree(pid: number, job: JobOfAgent, signal: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return false;
  const others = new Set([...(await descendants(pid)), ...(await processesOfJob(job))]);
  others.delete(pid);
  others.delete(process.pid);
  const group = kill(-pid, signal);
  for (const p of others) kill(p, signal);
  const self = kill(pid, signal);
  return group || self;
}

/** Signal numbers whose default action neither terminates nor dumps core (0 only checks). */
const HARMLESS = new Set(['SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGWINCH'].map(signalByName));

function signalByName(name: string): number {
  return (os.constants.signals as Record<string, number | undefined>)[name] ?? -1;
}

/** Whether `signal`, left to its default action, ends a process (so an in-agent job it is sent to is ended). */
export function terminates(signal: number): boolean {
  return signal !== 0 && !HARMLESS.has(signal);
}

/** Highest signal number Linux knows (SIGRTMAX). */
const MAX_SIGNAL = 64;

/**
 * A signal given as a number (`9`, `'9'`) or a name (`SIGKILL`, `KILL`, `sigkill`) → its number;
 * `undefined` when it is neither.
 */
export function parseSignal(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 && value <= MAX_SIGNAL ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const s = value.trim();
  if (/^\d+$/.test(s)) return parseSignal(Number(s));
  const upper = s.toUpperCase();
  const n = signalByName(upper.startsWith('SIG') ? upper : `SIG${upper}`);
  return n >= 0 ? n : undefined;
}
