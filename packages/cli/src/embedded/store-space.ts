// How much a local nats-server may store: its JetStream `max_file_store`, set from the room left
// on the filesystem of its store each time it starts.
//
// Why set it: nats-server 2.9 hangs its JetStream (every stream and API call stops answering,
// until the process is killed) when a write to its store fails with ENOSPC. Held below the free
// space, JetStream refuses a publish cleanly instead ("insufficient resources") before the disk
// is full, and the dispatcher and the agents can say so and retry. The server's own default
// (75% of the space free at start) leaves a quarter of the disk unused on a big disk and does
// not count what the store already holds.
//
// The disk may also be filled by something else. For that, `up` keeps a ballast file (up to
// 8 MiB) beside the store: when the disk is full the supervisor deletes it and starts
// the server again with a limit of what it holds, so JetStream has room for its own state and
// refuses new publishes instead of hanging (supervisor/nats-store-watch.ts).

import { open, readdir, rm, stat, statfs } from 'node:fs/promises';
import path from 'node:path';

const MiB = 1024 * 1024;

export interface StoreSpace {
  /** Bytes the store's files take now. */
  used: number;
  /** Bytes free on the store's filesystem for an unprivileged writer. */
  free: number;
  /** Bytes kept free for what is not counted against the limit (consumer state, metadata). */
  reserve: number;
  /** `max_file_store` for a server started now: what it holds plus the room left, less the reserve; never below `used`. */
  limit: number;
}

/** Bytes under `dir` (0 when it does not exist yet). */
export async function directoryBytes(dir: string): Promise<number> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  let total = 0;
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await directoryBytes(p);
    else if (e.isFile())
      total += await stat(p).then(
        (s) => s.size,
        () => 0,
      );
  }
  return total;
}

/** The reserve on a filesystem of `size` bytes: 5% of it, at least 4 MiB, at most 64 MiB. */
export function reserveFor(size: number): number {
  return Math.min(64 * MiB, Math.max(4 * MiB, Math.floor(size * 0.05)));
}

/** The ballast: room for JetStream's own state once the disk is full (the reserve, at most 8 MiB). */
export function ballastSize(fsSize: number): number {
  return Math.min(8 * MiB, reserveFor(fsSize));
}

/** The ballast file of a store (not under `jetstream/`, which is the server's). */
export const ballastFile = (storeDir: string): string => path.join(storeDir, 'reserve.ballast');

/**
 * Writes the ballast (real blocks) when it is missing and the disk has room
 * for it and a reserve besides; true when it is there afterwards.
 */
export async function ensureBallast(storeDir: string): Promise<boolean> {
  const file = ballastFile(storeDir);
  const fsStat = await statfs(storeDir);
  const size = ballastSize(fsStat.blocks * fsStat.bsize);
  if (
    (await stat(file).then(
      (s) => s.size,
      () => -1,
    )) === size
  )
    return true;
  if (fsStat.bavail * fsStat.bsize < 2 * size) return false;
  const fh = await open(file, 'w');
  try {
    const chunk = Buffer.alloc(MiB);
    for (let written = 0; written < size; written += chunk.length) await fh.write(chunk, 0, Math.min(chunk.length, size - written));
  } catch (err) {
    await fh.close();
    await rm(file, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return false;
    throw err;
  }
  await fh.close();
  return true;
}

/** Deletes the ballast; the bytes it freed (0 when there was none). */
export async function dropBallast(storeDir: string): Promise<number> {
  const file = ballastFile(storeDir);
  const size = await stat(file).then(
    (s) => s.size,
    () => 0,
  );
  await rm(file, { force: true });
  return size;
}

/** What the store at `storeDir` may hold if its server started now. */
export async function storeSpace(storeDir: string): Promise<StoreSpace> {
  const fsStat = await statfs(storeDir);
  const free = fsStat.bavail * fsStat.bsize;
  const reserve = reserveFor(fsStat.blocks * fsStat.bsize);
  const used = await directoryBytes(path.join(storeDir, 'jetstream'));
  return { used, free, reserve, limit: Math.max(used, used + free - reserve) };
}

/** `12.3 MB`, for log lines. */
export function megabytes(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MB`;
}
