// What the CLI says to input that is too large, too deep or empty, through the real CLI,
// dispatcher and nats-server: a clear sentence each, no echo of the input, nothing published.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliHome } from './support/cli.js';

const home = new CliHome('jobledger-hostile-e2e-');

beforeAll(async () => {
  await home.up(['web1']);
}, 240_000);

afterAll(async () => {
  await home.downAndRemove();
}, 120_000);

const jobs = async () => (await home.query<{ n: number }>('SELECT count(*)::int AS n FROM jids'))[0]!.n;

describe('hostile input at the CLI', () => {
  it('a job over the server max_payload says it is too large (not that the master is down)', async () => {
    const before = await jobs();
    // 12 words of 100 KB: each under the kernel's limit for one argument, 1.2 MB together
    const r = await home.run(['run', '*', 'test.arg', ...Array.from({ length: 12 }, () => 'y'.repeat(100_000))]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^ERROR: the job is 12\d{5} bytes; the master accepts at most 1048576 bytes \(nats-server max_payload\)\n$/);
    expect(await jobs()).toBe(before);
  });

  it('an empty function name is one plain sentence', async () => {
    const r = await home.run(['run', '*', '']);
    expect(r).toEqual({ code: 1, stdout: 'fun: no function given (name one, such as test.ping)\n', stderr: '' });
  });

  it('a 100,000-character target is refused without echoing it', async () => {
    const r = await home.run(['run', `a and ( ${'x'.repeat(100_000)}`, 'test.ping']);
    expect(r).toEqual({ code: 1, stdout: 'tgt: the target is longer than 65536 characters\n', stderr: '' });
  });

  it('--metadata nested 1,000 deep says how deep it may be, quoting only its start', async () => {
    const r = await home.run(['run', '*', 'test.ping', '--metadata', '['.repeat(1000) + ']'.repeat(1000)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('… (2000 characters)');
    expect(r.stderr).toMatch(/nested too deeply to read \(keep it under 64 levels\)|nested more than 64 levels deep/);
    expect(r.stderr).not.toContain('not a mapping');
    expect(r.stderr.split('\n')[0]!.length).toBeLessThan(400);
  });
});
