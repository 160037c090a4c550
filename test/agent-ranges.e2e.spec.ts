// Fleets written as ranges: `up --agents 'web-[01-24]' --agent-processes 3` hosts 24 ids in three
// agent processes, each with one consumer and one credential for its ids.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliHome } from './support/cli.js';

const home = new CliHome('jobledger-ranges-');

afterAll(() => home.downAndRemove(), 120_000);

describe('agent id ranges and processes', () => {
  it('refuses a range that cannot be expanded, in plain words, before starting anything', async () => {
    const r = await home.run(['up', '--agents', 'web-[9-1]']);
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'jobledger up: the range [9-1] goes down: write [1-9]\n' });
    const file = path.join(os.tmpdir(), `jobledger-no-such-ids-${process.pid}`);
    const a = await home.run(['agent', '--master', 'tls://127.0.0.1:1', '--ids-file', file]);
    // 2, as for every configuration error of the agent command.
    expect(a.code).toBe(2);
    expect(a.stderr).toContain(`cannot read the ids file ${file}: ENOENT`);
    expect(fs.existsSync(path.join(home.root, 'run', 'agent-1.pid'))).toBe(false);
  });

  it('hosts a zero-padded range spread over the processes asked for, and every id answers', async () => {
    const up = await home.run(['up', '--detach', '--agents', 'web-[01-24]', '--agent-processes', '3'], { timeoutMs: 180_000 });
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(up.stdout).toContain('  agents:     web-01, web-02, web-03 … web-24 (24 ids in 3 processes)\n');
    home.pids = home.recordedPids();
    expect([...home.pids.keys()].filter((n) => n.startsWith('agent-')).sort()).toEqual(['agent-1', 'agent-2', 'agent-3']);
    const ping = await home.run(['run', '*', 'test.ping']);
    expect(ping.code).toBe(0);
    const expected = Array.from({ length: 24 }, (_, i) => `web-${String(i + 1).padStart(2, '0')}:\n    True\n`);
    expect(ping.stdout.match(/^web-\d\d:\n {4}True\n/gm)?.sort()).toEqual(expected);
  }, 240_000);
});
