// bin/jobledger.js runs the CLI bundle with V8's code cache: one file per command beside the
// bundle, written when the command first exits and written again when V8 refuses it. A cache
// must never change what a command does, only how fast it starts.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliHome, REPO_ROOT } from './support/cli.js';

const BUNDLE = path.join(REPO_ROOT, 'packages/cli/dist/bundle/main.cjs');
/** `help` is a command no other test runs, so its cache file is this test's alone. */
function cacheFile(): string {
  const st = fs.statSync(BUNDLE);
  return `${BUNDLE}.help.${st.size}-${Math.trunc(st.mtimeMs)}.cache`;
}

describe('the CLI bundle and its code cache', () => {
  const home = new CliHome('jobledger-code-cache-');
  afterAll(() => fs.rmSync(home.root, { recursive: true, force: true }));

  it('writes a cache on the first run of a command, uses it after, and replaces one V8 refuses', async () => {
    expect(fs.existsSync(BUNDLE), 'npm run build makes the bundle').toBe(true);
    const CACHE = cacheFile();
    fs.rmSync(CACHE, { force: true });

    const first = await home.run(['help']);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^Usage: jobledger/m);
    expect(fs.existsSync(CACHE), 'bin/jobledger.js runs the bundle only while it is newer than every build: npm run build').toBe(true);
    const written = fs.statSync(CACHE);
    expect(written.size).toBeGreaterThan(10_000);

    const second = await home.run(['help']);
    expect(second).toEqual(first);
    // Accepted by V8, so not written again (a rename would give another inode).
    expect(fs.statSync(CACHE).ino).toBe(written.ino);
    expect(fs.readdirSync(path.dirname(BUNDLE)).filter((f) => f.includes('.help.') && f.endsWith('.tmp'))).toEqual([]);

    fs.writeFileSync(CACHE, Buffer.alloc(4096, 0x5a));
    const third = await home.run(['help']);
    expect(third).toEqual(first);
    const rewritten = fs.readFileSync(CACHE);
    expect(rewritten.length).toBeGreaterThan(10_000);
    expect(rewritten.subarray(0, 64).equals(Buffer.alloc(64, 0x5a))).toBe(false);
  });
});
