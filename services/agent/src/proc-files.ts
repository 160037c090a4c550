import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { encodeAgentId } from '@jobledger/core';
import { JOB_ENV_MARKER } from './modules/index.js';

/** Salt's proc file: the publication plus the pid running it. */
export interface ProcFile {
  jid: string;
  fun: string;
  arg: unknown[];
  tgt: string | string[];
  tgt_type: string;
  user: string;
  ret: string;
  pid: number;
}

/** A jid as a file name: itself when it is plain, else its reversible token encoding. */
function fileName(jid: string): string {
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

  /** Writes the file atomically (a temporary dot-file renamed into place). */
  async write(data: ProcFile): Promise<void> {
    const name = fileName(data.jid);
    const tmp = path.join(this.dir, `.${name}.${process.pid}.tmp`);
    await writeFile(tmp, JSON.stringify(data));
    await rename(tmp, path.join(this.dir, name));
  }

  async remove(jid: string): Promise<void> {
    await rm(this.file(jid), { force: true });
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
}

/**
 * Kills what is left of a job process whose agent died (a shell job keeps running when its agent
 * is SIGKILLed). Only a process that still carries the job's marker in its environment is
 * touched, so a reused pid is never hit. Returns whether something was killed.
 */
export async function reapOrphan(pid: number, jid: string): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return false;
  let environ: string;
  try {
    environ = await readFile(`/proc/${pid}/environ`, 'latin1');
  } catch {
    return false;
  }
  if (!environ.split('\0').includes(`${JOB_ENV_MARKER}=${jid}`)) return false;
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      /* gone, or not a group leader */
    }
  }
  return true;
}
