import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ballastFile, ballastSize, directoryBytes, dropBallast, ensureBallast, reserveFor, storeSpace } from './store-space.js';

const MiB = 1024 * 1024;
const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'store-space-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('store space', () => {
  it('keeps 5% of the filesystem in reserve, between 4 MiB and 64 MiB', () => {
    expect(reserveFor(10 * MiB)).toBe(4 * MiB);
    expect(reserveFor(1000 * MiB)).toBe(50 * MiB);
    expect(reserveFor(100_000 * MiB)).toBe(64 * MiB);
  });

  it('counts what the store holds and never sets a limit below it', async () => {
    const dir = tmp();
    fs.mkdirSync(path.join(dir, 'jetstream', 'acc', 'streams'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'jetstream', 'acc', 'streams', '1.blk'), Buffer.alloc(3000));
    fs.writeFileSync(path.join(dir, 'outside.txt'), Buffer.alloc(500));
    expect(await directoryBytes(path.join(dir, 'jetstream'))).toBe(3000);
    const space = await storeSpace(dir);
    expect(space.used).toBe(3000);
    expect(space.limit).toBe(Math.max(space.used, space.used + space.free - space.reserve));
  });

  it('writes the ballast once (the reserve, at most 8 MiB), and drops it', async () => {
    const dir = tmp();
    const st = fs.statfsSync(dir);
    const size = ballastSize(st.blocks * st.bsize);
    expect(size).toBe(Math.min(8 * MiB, reserveFor(st.blocks * st.bsize)));
    expect(await ensureBallast(dir)).toBe(true);
    expect(fs.statSync(ballastFile(dir)).size).toBe(size);
    expect(await ensureBallast(dir)).toBe(true);
    expect(await dropBallast(dir)).toBe(size);
    expect(fs.existsSync(ballastFile(dir))).toBe(false);
    expect(await dropBallast(dir)).toBe(0);
  });
});
