// `jobledger runner` = Salt's `salt-run` (Salt reference §9) through the real CLI against a ledger
// started with `up`: the jobs runner reads the job cache, and every runner call is itself a
// runner job recorded on the stream and stored in salt_returns under the master id.

import os from 'node:os';
import { jidToTime } from '@jobledger/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliHome } from './support/cli.js';

const home = new CliHome('jobledger-runner-e2e-');
const IDS = ['web1', 'web2'];
const MASTER_ID = process.env.JOBLEDGER_MASTER_ID || `${os.hostname()}_master`;
const USER = process.env.SUDO_USER ? `sudo_${process.env.SUDO_USER}` : os.userInfo().username;
/** The cmd.run job every test looks at. */
let J = '';

/** `jobledger runner …`, expected to succeed. */
async function runner(...args: string[]): Promise<string> {
  const r = await home.run(['runner', ...args]);
  expect(r.stderr, r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

async function runnerJson<T = Record<string, unknown>>(...args: string[]): Promise<T> {
  return JSON.parse(await runner(...args, '--out', 'json')) as T;
}

const START_TIME = /^\d{4}, [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d\.\d{6}$/;

beforeAll(async () => {
  await home.up(IDS);
  const r = await home.run(['run', '-v', '*', 'cmd.run', 'echo hello']);
  expect(r.code).toBe(0);
  J = /^Executing job with jid (\d{20})\n/.exec(r.stdout)![1]!;
  expect((await home.run(['run', '*', 'test.ping'])).code).toBe(0);
}, 200_000);

afterAll(() => home.downAndRemove(), 120_000);

describe('jobledger runner jobs.*, as salt-run', () => {
  it("jobs.list_jobs search_function='cmd.*' lists J with Salt's fields and StartTime", async () => {
    const out = await runner('jobs.list_jobs', 'search_function=cmd.*');
    expect(out).toContain(
      `${J}:\n    ----------\n    Arguments:\n        - echo hello\n    Function:\n        cmd.run\n    StartTime:\n        `,
    );
    expect(out).toContain(`    Target:\n        *\n    Target-type:\n        glob\n    User:\n        ${USER}\n`);
    const listed = await runnerJson<Record<string, Record<string, unknown>>>('jobs.list_jobs', 'search_function=cmd.*');
    expect(Object.values(listed).every((r) => typeof r.Function === 'string' && r.Function.startsWith('cmd.'))).toBe(true);
    expect(listed[J]).toEqual({
      Function: 'cmd.run',
      Arguments: ['echo hello'],
      Target: '*',
      'Target-type': 'glob',
      User: USER,
      StartTime: expect.stringMatching(START_TIME),
    });
    expect(listed[J]!.StartTime).toBe(jidToTime(J));
  });

  it('jobs.lookup_jid J missing=True prints every agent’s return', async () => {
    expect(await runner('jobs.lookup_jid', J, 'missing=True')).toBe('web1:\n    hello\nweb2:\n    hello\n');
    expect(await runner('jobs.lookup_jid', J, 'returned=False', 'missing=True')).toBe('');
  });

  it('jobs.exit_success, jobs.list_job and jobs.print_job', async () => {
    expect(await runner('jobs.exit_success', J)).toBe('web1:\n    True\nweb2:\n    True\n');
    const job = await runnerJson('jobs.list_job', J);
    expect(job).toMatchObject({
      jid: J,
      Function: 'cmd.run',
      Minions: IDS,
      Target: '*',
      StartTime: expect.stringMatching(START_TIME),
      EndTime: expect.stringMatching(START_TIME),
    });
    expect(job.Result).toEqual({
      web1: expect.objectContaining({ cmd: '_return', id: 'web1', jid: J, return: 'hello', retcode: 0, success: true }),
      web2: expect.objectContaining({ id: 'web2', return: 'hello' }),
    });
    const printed = await runnerJson('jobs.print_job', J);
    const { jid: _jid, ...record } = job;
    expect(printed).toEqual({ [J]: record });
    const nested = await runner('jobs.print_job', J);
    expect(nested.startsWith(`${J}:\n    ----------\n    Arguments:\n        - echo hello\n    EndTime:\n`)).toBe(true);
  });

  it('jobs.last_run and jobs.list_jobs_filter count=2', async () => {
    const last = await runnerJson<Record<string, Record<string, unknown>>>('jobs.last_run', 'function=cmd.*');
    expect(Object.keys(last)).toEqual([J]);
    const two = await runnerJson<Array<Record<string, unknown>>>('jobs.list_jobs_filter', 'count=2');
    expect(two).toHaveLength(2);
    expect(two[0]!.JID! < two[1]!.JID!).toBe(true);
    for (const r of two)
      expect(Object.keys(r).sort()).toEqual(['Arguments', 'Function', 'JID', 'StartTime', 'Target', 'Target-type', 'User']);
    const newest = await runnerJson<Record<string, unknown>>('jobs.last_run');
    expect(Object.keys(newest)).toHaveLength(1);
  });

  it('jobs.active shows a running test.sleep with the pid on each agent; lookup_jid missing=True names them', async () => {
    const r = await home.run(['run', '--async', '*', 'test.sleep', '4']);
    const sleep = /job ID: (\d{20})/.exec(r.stdout)![1]!;
    const active = await runnerJson<Record<string, Record<string, unknown>>>('jobs.active');
    expect(active[sleep]).toMatchObject({
      Function: 'test.sleep',
      Arguments: [4],
      Target: '*',
      'Target-type': 'glob',
      StartTime: expect.stringMatching(START_TIME),
      Returned: [],
    });
    const running = active[sleep]!.Running as Array<Record<string, number>>;
    expect(running.map((x) => Object.keys(x)[0]).sort()).toEqual(IDS);
    for (const x of running) expect(Object.values(x)[0]).toBeGreaterThan(0);
    expect(await runner('jobs.lookup_jid', sleep, 'missing=True')).toBe(
      'web1:\n    Minion did not return\nweb2:\n    Minion did not return\n',
    );
  });

  it("an unknown function prints Salt's text and exits 1; an empty answer prints nothing (json: {})", async () => {
    const r = await home.run(['runner', 'foo.bar']);
    expect(r).toMatchObject({ code: 1, stdout: "'foo.bar' is not available.\n" });
    expect(await runner('jobs.lookup_jid', '20200101000000000000')).toBe('');
    expect(await runner('jobs.lookup_jid', '20200101000000000000', '--out', 'json')).toBe('{}\n');
  });

  it('the runner calls themselves are in salt_returns under the master id, success true; lookup_jid of one gives the runner dict', async () => {
    expect((await home.run(['db', 'wait'])).code).toBe(0);
    const rows = await home.query<{ fun: string; jid: string; id: string; success: string; return: Record<string, unknown> }>(
      `SELECT fun, jid, id, success, "return" FROM salt_returns WHERE fun LIKE 'runner.%' ORDER BY jid`,
    );
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set([MASTER_ID]));
    const listJobs = rows.find((r) => r.fun === 'runner.jobs.list_jobs')!;
    expect(listJobs).toMatchObject({
      success: 'true',
      return: { fun: 'runner.jobs.list_jobs', jid: listJobs.jid, user: USER, success: true },
    });
    expect(listJobs.return.fun_args).toEqual([{ search_function: 'cmd.*' }]);
    expect(rows.find((r) => r.fun === 'runner.foo.bar')).toMatchObject({ success: 'false' });
    expect(rows.filter((r) => r.fun !== 'runner.foo.bar').every((r) => r.success === 'true')).toBe(true);

    const looked = await runnerJson<Record<string, Record<string, unknown>>>('jobs.lookup_jid', listJobs.jid);
    expect(Object.keys(looked)).toEqual([MASTER_ID]);
    expect(looked[MASTER_ID]).toEqual(listJobs.return);
    const listed = await runnerJson<Record<string, Record<string, unknown>>>(
      'jobs.list_jobs',
      'search_function=runner.*',
      `search_target=${MASTER_ID}`,
    );
    expect(listed[listJobs.jid]).toEqual({
      Function: 'runner.jobs.list_jobs',
      Arguments: [],
      Target: MASTER_ID,
      'Target-type': 'list',
      User: USER,
      StartTime: expect.stringMatching(START_TIME),
    });
  });
});
