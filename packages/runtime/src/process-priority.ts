import { readdirSync } from 'node:fs';
import os from 'node:os';

/**
 * Lowers a whole process's CPU priority (this one's by default) to `nice` (0–19): every thread
 * it has now (Linux keeps a nice value per thread; threads made later inherit it from the one
 * that makes them). Raising a nice value needs no privilege; one already higher is kept.
 * Returns the threads seen; where `/proc` has no task list, the process's main thread only.
 */
export function lowerProcessPriority(nice: number, pid: number | 'self' = 'self'): number {
  if (!Number.isInteger(nice) || nice < 0 || nice > 19) throw new RangeError(`a nice value is 0–19, got ${nice}`);
  let tids: number[];
  try {
    tids = readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    tids = [pid === 'self' ? 0 : pid];
  }
  let changed = 0;
  for (const tid of tids) {
    try {
      if (os.getPriority(tid) < nice) os.setPriority(tid, nice);
      changed++;
    } catch {
      // A thread that ended meanwhile.
    }
  }
  return changed;
}
