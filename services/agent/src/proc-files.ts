import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { encodeAgentId, type JobPublishedData } from '@jobledger/core';
import type { ProcRecord } from './modules/index.js';
import { processesOfJob, signalProcessTree, type JobOfAgent } from './processes.js';

const SIGKILL = 9;

/** Salt's proc file: the publication plus the pid running it (Salt's proc dict). */
export type ProcFile = ProcRecord;

/**
 * The proc file of `job` run by `pid`: exactly what Salt's minion writes, its publish payload
 * (`fun, arg, tgt, jid, ret, tgt_type, user`, with `master_id` / `metadata` when the job has them)
 * after `pid`.
 */
export function procFileOf(job: JobPublishedData, pid: number): ProcFile {
  return {
    pid,
    fun: job.fun,
    arg: job.arg,
    tgt: job.tgt,
    jid: job.jid,
    ret: job.ret,
    tgt_type: job.tgt_type,
    user: job.user,
    ...(job.master_id !== undefined ? { master_id: job.master_id } : {}),
    ...(job.metadata !== undefined ? { metadata: job.metadata } : {}),
  };
}

/** A proc file as read: `data` is absent when the file is not a proc file. */
export interface ProcEntry {
  name: string;
  data?: ProcFile;
}

/** A jid as a file name: itself when it is plain, else its reversible token encoding. */
export function fileName(jid: string): string {
  return /^[A-Za-z0-9_-]+$/.test(jid) ? jid : encodeAgentId(jid);
}

function isProcFile(v: unknown): v is ProcFile {
  const p = v as ProcFile;
  return typeof v === 'object' && v !== null && typeof p.jid === 'string' && typeof p.fun === 'string' && Number.isInteger(p.pid);
}

/** `<cachedir>/proc/`: one file per job running for one agent id. */
export class ProcDir {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  file(jid: string): string {
    return path.join(this.dir, fileName(jid));
  }

  /**
   * Writes the file atomically (a temporary dot-file renamed into place). Synchronous calls, as
   * Salt's minion makes them: a few small local writes per job, which through the thread pool
   * cost an agent of 250 ids five times the CPU (about 50 ms a job against 10 here).
   */
  async write(data: ProcFile): Promise<void> {
    const name = fileName(data.jid);
    const tmp = path.join(this.dir, `.${name}.${process.pid}.tmp`);
    writeFileSync(tmp, JSON.stringify(data));
    renameSync(tmp, path.join(this.dir, name));
  }

  async remove(jid: string): Promise<void> {
    rmSync(this.file(jid), { force: true });
  }

  async exists(jid: string): Promise<boolean> {
    return stat(this.file(jid)).then(
      () => true,
      () => false,
    );
  }

  /**
   * The proc files present (jobs that were running when a previous process died). Unreadable
   * files come back without `data`; leftover temporary files are deleted.
   */
  async scan(): Promise<Array<{ name: string; data?: ProcFile }>> {
    const names = await readdir(this.dir);
    const out: Array<{ name: string; data?: ProcFile }> = [];
    for (const name of names) {
      const file = path.join(this.dir, name);
      if (name.startsWith('.')) {
        await rm(file, { force: true });
        continue;
      }
      try {
        const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
        out.push(isProcFile(parsed) ? { name, data: parsed } : { name });
      } catch {
        out.push({ name });
      }
    }
    return out;
  }

  async removeName(name: string): Promise<void> {
    await rm(path.join(this.dir, name), { force: true });
  }

  async existsName(name: string): Promise<boolean> {
    return stat(path.join(this.dir, name)).then(
      () => true,
      () => false,
    );
  }

  /**
   * The proc files of jobs that may be running now: like `scan`, but temporary files (a write in
   * progress) are left alone, and a file removed meanwhile is simply not listed.
   */
  async list(): Promise<ProcEntry[]> {
    const names = await readdir(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    const out: ProcEntry[] = [];
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const entry = await this.readName(name);
      if (entry) out.push(entry);
    }
    return out;
  }

  /** The proc file of `jid`; undefined when there is none. */
  read(jid: string): Promise<ProcEntry | undefined> {
    return this.readName(fileName(jid));
  }

  private async readName(name: string): Promise<ProcEntry | undefined> {
    let text: string;
    try {
      text = await readFile(path.join(this.dir, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      return { name };
    }
    try {
      const parsed: unknown = JSON.parse(text);
      return isProcFile(parsed) ? { name, data: parsed } : { name };
    } catch {
      return { name };
    }
  }
}

/**
 * Kills what is left of a job whose agent died (a shell job keeps running when its agent is
 * SIGKILLed): the job process's whole tree, and any process that still carries the job's marks
 * in its environment. Only such processes are touched, so a reused pid is never hit. Returns
 * whether something was killed.
 */
export async function reapOrphan(pid: number, job: JobOfAgent): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return false;
  const left = await processesOfJob(job);
  if (left.length === 0) return false;
  if (left.includes(pid)) return signalProcessTree(pid, job, SIGKILL);
  for (const p of left) {
    try {
      process.kill(p, SIGKILL);
    } catch {
      /* gone meanwhile */
    }
  }
  return true;
}
