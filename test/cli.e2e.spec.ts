import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { CLI_BIN, CliHome, REPO_ROOT, alive } from './support/cli.js';

const IDS = ['192.168.153.141', '192.168.153.142', '192.168.153.136'];
const home = new CliHome();

/** Blocks of Salt's nested output, keyed by agent id. */
function blocks(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | undefined;
  for (const line of stdout.split('\n')) {
    if (/^\S.*:$/.test(line)) {
      current = line.slice(0, -1);
      out.set(current, '');
    } else if (current !== undefined && line !== '') {
      out.set(current, out.get(current) + line + '\n');
    }
  }
  return out;
}

beforeAll(async () => {
  const up = await home.up(IDS);
  expect(up.stdout).toContain('jobledger is up');
}, 200_000);

afterAll(async () => {
  const down = await home.run(['down']);
  expect(down.code).toBe(0);
  for (const [name, pid] of home.pids) expect(alive(pid), `${name} (pid ${pid}) still running after down`).toBe(false);
  expect(home.recordedPids().size).toBe(0);
  home.remove();
}, 120_000);

describe('jobledger run, as salt', () => {
  it("test.ping on '*' prints True for every agent, and the returns reach salt_returns", async () => {
    const r = await home.run(['run', '-v', '*', 'test.ping']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const jid = /^Executing job with jid (\d{20})\n-{43}\n\n/.exec(r.stdout)?.[1];
    expect(jid).toBeDefined();
    const b = blocks(r.stdout.split('\n').slice(3).join('\n'));
    expect([...b.keys()].sort()).toEqual([...IDS].sort());
    for (const id of IDS) expect(b.get(id)).toBe('    True\n');

    expect((await home.run(['db', 'wait'])).code).toBe(0);
    const rows = await home.query<{
      fun: string;
      jid: string;
      return: unknown;
      id: string;
      success: string;
      full_ret: Record<string, unknown>;
    }>('select fun, jid, return, id, success, full_ret from salt_returns where jid = $1 order by id', [jid]);
    expect(rows.map((x) => x.id)).toEqual([...IDS].sort());
    for (const row of rows) {
      expect(row).toMatchObject({ fun: 'test.ping', jid, return: true, success: 'true' });
      expect(row.full_ret).toMatchObject({
        cmd: '_return',
        id: row.id,
        jid,
        fun: 'test.ping',
        fun_args: [],
        return: true,
        retcode: 0,
        success: true,
      });
      expect(row.full_ret._stamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$/);
    }
    const jids = await home.query<{ load: Record<string, unknown> }>('select load from jids where jid = $1', [jid]);
    expect(jids[0]?.load).toMatchObject({ jid, fun: 'test.ping', tgt: '*', tgt_type: 'glob', minions: [...IDS].sort() });
  });

  it("cmd.run prints the command's output", async () => {
    const r = await home.run(['run', '192.168.153.141', 'cmd.run', 'echo hello; echo world']);
    expect(r).toEqual({ code: 0, stdout: '192.168.153.141:\n    hello\n    world\n', stderr: '' });
  });

  it("a non-zero cmd.run prints its output and exits 1 with Salt's error", async () => {
    const r = await home.run(['run', '192.168.153.141', 'cmd.run', 'echo hi; exit 3']);
    expect(r).toEqual({ code: 1, stdout: '192.168.153.141:\n    hi\n', stderr: 'ERROR: Minions returned with non-zero exit code\n' });
  });

  it('an unknown function says it is not available', async () => {
    const r = await home.run(['run', '192.168.153.141', 'foo.bar']);
    expect(r).toEqual({
      code: 1,
      stdout: "192.168.153.141:\n    'foo.bar' is not available.\n",
      stderr: 'ERROR: Minions returned with non-zero exit code\n',
    });
  });

  it('a glob that matches nobody sends nothing', async () => {
    const before = await home.query<{ n: string }>('select count(*) as n from jids');
    const r = await home.run(['run', 'nomatch*', 'test.ping']);
    expect(r).toEqual({
      code: 2,
      stdout: 'No minions matched the target. No command was sent, no jid was assigned.\n',
      stderr: 'ERROR: No return received\n',
    });
    expect((await home.run(['db', 'wait'])).code).toBe(0);
    expect(await home.query('select count(*) as n from jids')).toEqual(before);
  });

  it('-L with an id no agent has reports it as not returned', async () => {
    const r = await home.run(['run', '-t', '3', '-L', '192.168.153.141,ghost', 'test.ping']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('ERROR: Minions returned with non-zero exit code\n');
    const jid = /jobs\.lookup_jid (\d{20})$/m.exec(r.stdout)?.[1];
    expect(jid).toBeDefined();
    expect(r.stdout).toBe(
      '192.168.153.141:\n    True\nghost:\n    Minion did not return. [No response]\n' +
        '    The minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n' +
        '    \n' +
        `    jobledger runner jobs.lookup_jid ${jid}\n`,
    );
  });

  it('--async prints the jid at once, and the job still runs', async () => {
    const r = await home.run(['run', '--async', '192.168.153.142', 'test.echo', 'later']);
    expect(r.code).toBe(0);
    const jid = /^Executed command with job ID: (\d{20})\n$/.exec(r.stdout)?.[1];
    expect(jid).toBeDefined();
    const until = Date.now() + 10_000;
    let rows: { return: unknown }[] = [];
    while (Date.now() < until && rows.length === 0) {
      rows = await home.query<{ return: unknown }>('select return from salt_returns where jid = $1', [jid]);
      if (rows.length === 0) await new Promise((res) => setTimeout(res, 100));
    }
    expect(rows).toEqual([{ return: 'later' }]);
  });

  it('--out json prints one document per agent', async () => {
    const r = await home.run(['run', '--out', 'json', '192.168.153.14*', 'test.ping']);
    expect(r.code).toBe(0);
    const docs = r.stdout.split(/\n(?=\{)/).map((d) => JSON.parse(d) as Record<string, unknown>);
    expect(docs.map((d) => Object.keys(d)[0]).sort()).toEqual(['192.168.153.141', '192.168.153.142']);
    expect(docs.every((d) => Object.values(d)[0] === true)).toBe(true);
  });
});

describe('jobledger key, as salt-key', () => {
  it("lists up's agents as accepted; a deleted key cuts its agent off until it is accepted again", async () => {
    const keys = (accepted: string[], pending: string[] = []) =>
      `Accepted Keys:\n${[...accepted]
        .sort()
        .map((i) => i + '\n')
        .join('')}Denied Keys:\nUnaccepted Keys:\n${pending.map((i) => i + '\n').join('')}Rejected Keys:\n`;
    const list = await home.run(['key', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toBe(keys(IDS));

    const none = await home.run(['key', 'delete', 'nobody*', '-y']);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe("The key glob 'nobody*' does not match any unaccepted keys.\n");

    // A running agent's key, deleted: the server cuts it off, '*' no longer expects it, and (as
    // Salt's minion) it asks again and waits as an unaccepted key.
    const del = await home.run(['key', 'delete', '*.136', '-y']);
    expect(del.stderr).toBe('');
    expect(del.stdout).toBe(
      'The following keys are going to be deleted:\nAccepted Keys:\n192.168.153.136\nKey for minion 192.168.153.136 deleted.\n',
    );
    const rest = IDS.filter((id) => id !== '192.168.153.136');
    let again = '';
    for (let i = 0; i < 100 && again !== keys(rest, ['192.168.153.136']); i++) {
      await new Promise((res) => setTimeout(res, 100));
      again = (await home.run(['key', 'list'])).stdout;
    }
    expect(again).toBe(keys(rest, ['192.168.153.136']));
    const r = await home.run(['run', '*', 'test.ping', '--out', 'json']);
    expect(r.code).toBe(0);
    const answered = r.stdout.split(/\n(?=\{)/).map((d) => Object.keys(JSON.parse(d) as object)[0]);
    expect(answered.sort()).toEqual([...rest].sort());

    expect((await home.run(['key', 'accept', '*.136', '-y'])).stdout).toContain('Key for minion 192.168.153.136 accepted.\n');
    let back: string[] = [];
    for (let i = 0; i < 100 && back.length !== IDS.length; i++) {
      await new Promise((res) => setTimeout(res, 200));
      const p = await home.run(['run', '*', 'test.ping', '--out', 'json', '-t', '2']);
      back = p.code === 0 ? p.stdout.split(/\n(?=\{)/).map((d) => Object.keys(JSON.parse(d) as object)[0]!) : [];
    }
    expect(back.sort()).toEqual([...IDS].sort());
  }, 90_000);

  it('asks before deleting, and deletes nothing without a yes', async () => {
    const r = await new Promise<{ code: number; stdout: string }>((resolve) => {
      const child = execFile(process.execPath, [CLI_BIN, 'key', 'delete', '*.141'], { env: home.env(), cwd: REPO_ROOT }, (err, stdout) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout }),
      );
      child.stdin!.end('n\n');
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('The following keys are going to be deleted:\nAccepted Keys:\n192.168.153.141\nProceed? [N/y] ');
    expect((await home.run(['key', 'list'])).stdout).toContain('192.168.153.141\n');
  });
});
