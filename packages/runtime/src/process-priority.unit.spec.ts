import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { lowerProcessPriority } from './process-priority.js';

const nicesOf = (pid: number) => readdirSync(`/proc/${pid}/task`).map((t) => os.getPriority(Number(t)));

describe('lowerProcessPriority', () => {
  it('sets every thread of the process to the nice value, and never raises a priority', async () => {
    // A node process: several threads (V8's platform workers, libuv's).
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30_000)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const n = lowerProcessPriority(7, child.pid);
      expect(n).toBeGreaterThan(1);
      expect(new Set(nicesOf(child.pid!))).toEqual(new Set([7]));
      lowerProcessPriority(3, child.pid);
      expect(new Set(nicesOf(child.pid!))).toEqual(new Set([7]));
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses a value that is not a nice value', () => {
    expect(() => lowerProcessPriority(20)).toThrow(RangeError);
    expect(() => lowerProcessPriority(-1)).toThrow(RangeError);
  });
});
