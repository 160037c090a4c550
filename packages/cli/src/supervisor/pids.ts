import fs from 'node:fs';
import path from 'node:path';

/** Pid files under `$JOBLEDGER_HOME/run/`: `<name>.pid` holds `<pid> <marker>`. */

/** Alive and not a zombie (an orphan's zombie may never be reaped where pid 1 does not reap). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** True when `pid` is alive and its command line contains `marker` (guards against pid reuse). */
export function isOurs(pid: number, marker: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    return cmdline.includes(marker);
  } catch {
    return false;
  }
}

export interface PidRecord {
  name: string;
  pid: number;
  marker: string;
}

export function writePid(runDir: string, rec: PidRecord): void {
  fs.mkdirSync(runDir, { recursive: true });
  fs.writeFileSync(path.join(runDir, `${rec.name}.pid`), `${rec.pid} ${rec.marker}\n`);
}

export function removePid(runDir: string, name: string): void {
  fs.rmSync(path.join(runDir, `${name}.pid`), { force: true });
}

export function readPids(runDir: string): PidRecord[] {
  let files: string[];
  try {
    files = fs.readdirSync(runDir).filter((f) => f.endsWith('.pid'));
  } catch {
    return [];
  }
  const out: PidRecord[] = [];
  for (const f of files) {
    const [pid, ...marker] = fs.readFileSync(path.join(runDir, f), 'utf8').trim().split(' ');
    if (pid && /^\d+$/.test(pid)) out.push({ name: f.slice(0, -4), pid: Number(pid), marker: marker.join(' ') });
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** SIGTERM (or `signal`), wait up to `graceMs`, then SIGKILL. Resolves once the pid is gone. */
export async function terminate(pid: number, graceMs = 10_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const until = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < until) await sleep(50);
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    while (isAlive(pid)) await sleep(20);
  }
}

/** Stops every recorded process that is still ours, and removes all pid files. */
export async function reapRecorded(runDir: string, except: number[] = []): Promise<PidRecord[]> {
  const reaped: PidRecord[] = [];
  const recs = readPids(runDir).filter((r) => !except.includes(r.pid));
  // Services first, the servers they depend on last.
  const order = (r: PidRecord) => (r.name === 'supervisor' ? 0 : r.name === 'postgres' || r.name.startsWith('nats-server') ? 2 : 1);
  recs.sort((a, b) => order(a) - order(b));
  for (const r of recs) {
    if (isOurs(r.pid, r.marker)) {
      await terminate(r.pid, 10_000, r.name === 'postgres' ? 'SIGINT' : 'SIGTERM');
      reaped.push(r);
    }
    removePid(runDir, r.name);
  }
  return reaped;
}
