// End to end through the CLI: `jobledger run` as Salt's `salt` — waiting with saltutil.find_job,
// Ctrl-C, the output options, and every target type — against a ledger `up` started in a
// temporary home.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, CliHome, REPO_ROOT } from './support/cli.js';

const IDS = ['web1', 'web2', 'db1'];
const home = new CliHome('jobledger-run-e2e-');

const NO_RESPONSE = (id: string, jid: string) =>
  `${id}:\n    Minion did not return. [No response]\n` +
  '    The minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n' +
  '    \n' +
  `    jobledger runner jobs.lookup_jid ${jid}\n`;

/** `id:\n    value\n` blocks of nested output, in printed order. */
function blocks(stdout: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const line of stdout.split('\n')) {
    if (/^\S.*:$/.test(line)) out.push([line.slice(0, -1), '']);
    else if (out.length > 0 && line !== '') out[out.length - 1]![1] += line + '\n';
  }
  return out;
}

function sorted(b: Array<[string, string]>): Array<[string, string]> {
  return [...b].sort((x, y) => (x[0] < y[0] ? -1 : 1));
}

/** Every ordering of `items`. */
function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [x, ...rest]));
}

beforeAll(async () => {
  await home.up(IDS);
}, 200_000);

afterAll(() => home.downAndRemove(), 120_000);

describe('jobledger run: output options', () => {
  it('-v --summary prints the jid, the returns and Salt’s summary block, exactly', async () => {
    const r = await home.run(['run', '-v', 'web*', 'test.ping', '--summary']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const jid = /^Executing job with jid (\d{20})\n/.exec(r.stdout)?.[1];
    expect(jid).toBeDefined();
    const summary =
      '\n\n-------------------------------------------\nSummary\n-------------------------------------------\n' +
      '# of minions targeted: 2\n# of minions returned: 2\n# of minions that did not return: 0\n# of minions with errors: 0\n' +
      '-------------------------------------------\n';
    const expected = permutations(['web1', 'web2']).map(
      (order) => `Executing job with jid ${jid}\n${'-'.repeat(43)}\n\n` + order.map((id) => `${id}:\n    True\n`).join('') + summary,
    );
    expect(expected).toContain(r.stdout);
  });

  it('--summary is not printed with --out', async () => {
    const r = await home.run(['run', '--summary', '--out', 'txt', 'web1', 'test.ping']);
    expect(r).toEqual({ code: 0, stdout: 'web1: True\n', stderr: '' });
  });

  it('--show-jid prints `jid: <jid>` first', async () => {
    const r = await home.run(['run', '--show-jid', 'db1', 'test.echo', 'hello']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^jid: \d{20}\ndb1:\n {4}hello\n$/);
  });

  it('--static --out json prints one JSON document for all agents', async () => {
    const r = await home.run(['run', '--static', '--out', 'json', '*', 'test.ping']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.match(/^\{/gm)).toHaveLength(1);
    expect(JSON.parse(r.stdout)).toEqual({ web1: true, web2: true, db1: true });
  });

  it('--static prints the nested output once, sorted by id', async () => {
    const r = await home.run(['run', '-s', '*', 'test.echo', 'x']);
    expect(r).toEqual({ code: 0, stdout: 'db1:\n    x\nweb1:\n    x\nweb2:\n    x\n', stderr: '' });
  });

  it('--out-file writes the returns to the file (emptied first); --out-file-append appends', async () => {
    const file = path.join(home.root, 'out.txt');
    fs.writeFileSync(file, 'old\n');
    const r = await home.run(['run', '--out-file', file, 'web1', 'test.echo', 'one']);
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(fs.readFileSync(file, 'utf8')).toBe('web1:\n    one\n');
    const again = await home.run([
      'run',
      '--out-file',
      file,
      '--out-file-append',
      '--out',
      'json',
      '--out-indent',
      '-1',
      'web1',
      'test.echo',
      'two',
    ]);
    expect(again.code).toBe(0);
    expect(fs.readFileSync(file, 'utf8')).toBe('web1:\n    one\n{"web1": "two"}\n');
  });

  it('--force-color paints the nested output', async () => {
    const r = await home.run(['run', '--force-color', 'web1', 'test.ping']);
    expect(r.stdout).toBe('\x1b[0;36mweb1\x1b[0;0m:\n    \x1b[0;1;33mTrue\x1b[0;0m\n');
    // --force-color wins over --no-color, as in Salt's get_printout.
    const forced = await home.run(['run', '--no-color', '--force-color', 'web1', 'test.ping']);
    expect(forced.stdout).toBe(r.stdout);
    const failed = await home.run(['run', '--force-color', 'web1', 'cmd.run', 'echo hi; exit 3']);
    expect(failed.stdout).toBe('\x1b[0;31mweb1\x1b[0;0m:\n    \x1b[0;32mhi\x1b[0;0m\n');
  });

  it('--metadata goes with the job and its returns', async () => {
    const r = await home.run(['run', '--show-jid', '--metadata', '{"ticket": "OPS-1"}', 'web2', 'test.ping']);
    expect(r.code).toBe(0);
    const jid = /^jid: (\d{20})$/m.exec(r.stdout)![1];
    expect((await home.run(['db', 'wait'])).code).toBe(0);
    const [job] = await home.query<{ metadata: unknown }>('select metadata from jobs where jid = $1', [jid]);
    expect(job?.metadata).toEqual({ ticket: 'OPS-1' });
    const [ret] = await home.query<{ full_ret: Record<string, unknown> }>('select full_ret from salt_returns where jid = $1', [jid]);
    expect(ret?.full_ret.metadata).toEqual({ ticket: 'OPS-1' });
  });

  it('a missing target is Salt’s text and exit code 42', async () => {
    expect(await home.run(['run'])).toEqual({ code: 42, stdout: '', stderr: '\nCannot execute command without defining a target.\n\n' });
    expect(await home.run(['run', '-L', ' , ', 'test.ping'])).toEqual({
      code: 42,
      stdout: '',
      stderr: '\nCannot execute command without defining a target.\n\n',
    });
  });
});

describe('jobledger run: target types', () => {
  it("-G 'id:web*' targets by grain", async () => {
    const r = await home.run(['run', '-G', 'id:web*', 'test.ping']);
    expect(r.code).toBe(0);
    expect(sorted(blocks(r.stdout))).toEqual([
      ['web1', '    True\n'],
      ['web2', '    True\n'],
    ]);
  });

  it('-P targets by grain regular expression, case-insensitively', async () => {
    const r = await home.run(['run', '-P', 'kernel:LIN', 'test.ping']);
    expect(r.code).toBe(0);
    expect(sorted(blocks(r.stdout)).map(([id]) => id)).toEqual(['db1', 'web1', 'web2']);
  });

  it("-C 'web1 or G@kernel:Linux and not L@web2'", async () => {
    const r = await home.run(['run', '-C', 'web1 or G@kernel:Linux and not L@web2', 'test.ping']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(sorted(blocks(r.stdout))).toEqual([
      ['db1', '    True\n'],
      ['web1', '    True\n'],
    ]);
  });

  it('-C with E@ and parentheses, and an invalid expression matching nobody', async () => {
    const r = await home.run(['run', '-C', '( E@web or db* ) not web2', 'test.ping']);
    expect(sorted(blocks(r.stdout)).map(([id]) => id)).toEqual(['db1', 'web1']);
    const bad = await home.run(['run', '-C', 'and web1', 'test.ping']);
    expect(bad).toEqual({
      code: 2,
      stdout: 'No minions matched the target. No command was sent, no jid was assigned.\n',
      stderr: 'ERROR: No return received\n',
    });
  });

  it('-S matches an address or a network of the agents’ ipv4 grains', async () => {
    const r = await home.run(['run', '-S', '127.0.0.1', 'test.ping']);
    expect(r.code).toBe(0);
    expect(sorted(blocks(r.stdout)).map(([id]) => id)).toEqual(['db1', 'web1', 'web2']);
    const net = await home.run(['run', '-S', '127.0.0.0/8', 'test.ping']);
    expect(sorted(blocks(net.stdout)).map(([id]) => id)).toEqual(['db1', 'web1', 'web2']);
    // A documentation network this machine has no address in matches nobody.
    const local = Object.values(os.networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address));
    const unused = ['192.0.2.', '198.51.100.', '203.0.113.'].find((p) => !local.some((a) => a.startsWith(p)));
    const none = await home.run(['run', '-S', `${unused}0/24`, 'test.ping']);
    expect(none).toEqual({
      code: 2,
      stdout: 'No minions matched the target. No command was sent, no jid was assigned.\n',
      stderr: 'ERROR: No return received\n',
    });
  });

  it('-N expands a nodegroup of $JOBLEDGER_HOME/master.yaml; an unknown one names the file', async () => {
    const file = path.join(home.root, 'master.yaml');
    const unknown = await home.run(['run', '-N', 'webs', 'test.ping']);
    expect(unknown).toEqual({ code: 1, stdout: `Node group webs unavailable in ${file}\n`, stderr: '' });

    fs.writeFileSync(file, 'nodegroups:\n  webs: web*\n  dbs:\n    - db1\n  mixed: N@dbs or N@webs and not web2\n');
    const r = await home.run(['run', '--show-jid', '-N', 'mixed', 'test.ping']);
    expect(r.code).toBe(0);
    expect(sorted(blocks(r.stdout)).map(([id]) => id)).toEqual(['db1', 'web1']);
    const jid = /^jid: (\d{20})$/m.exec(r.stdout)![1];
    expect((await home.run(['db', 'wait'])).code).toBe(0);
    const [job] = await home.query<{ tgt: unknown; tgt_type: string }>('select tgt, tgt_type from jobs where jid = $1', [jid]);
    expect(job).toEqual({ tgt: ['(', 'L@db1', 'or', '(', 'web*', ')', 'and', 'not', 'web2', ')'], tgt_type: 'compound' });

    const inCompound = await home.run(['run', '-C', 'N@webs and not web1', 'test.ping']);
    expect(inCompound.stdout).toBe('web2:\n    True\n');
  });

  it('a list name no agent has is reported, even with --hide-timeout', async () => {
    const r = await home.run(['run', '--hide-timeout', '-L', 'web1,ghost', 'test.ping', '--summary']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('ERROR: Minions returned with non-zero exit code\n');
    const jid = /jobs\.lookup_jid (\d{20})$/m.exec(r.stdout)![1]!;
    expect(r.stdout).toBe(
      'web1:\n    True\n' +
        NO_RESPONSE('ghost', jid) +
        '\n\n-------------------------------------------\nSummary\n-------------------------------------------\n' +
        '# of minions targeted: 2\n# of minions returned: 1\n# of minions that did not return: 1\n# of minions with errors: 0\n' +
        '-------------------------------------------\n',
    );
  });

  it('pillar targets are refused with a clear error', async () => {
    const r = await home.run(['run', '-I', 'role:web', 'test.ping']);
    expect(r).toEqual({ code: 1, stdout: "target type 'pillar' is not supported yet\n", stderr: '' });
  });
});

describe('jobledger run: waiting as Salt does', () => {
  // These two wait on different agents, so they run side by side.
  it.concurrent(
    '-t 2 cmd.run "sleep 8" asks with saltutil.find_job and still prints the real output',
    async ({ expect }) => {
      const started = Date.now();
      const r = await home.run(['run', '-v', '-t', '2', 'web1', 'cmd.run', 'sleep 8; echo done']);
      const elapsed = Date.now() - started;
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const jid = /^Executing job with jid (\d{20})\n/.exec(r.stdout)![1]!;
      expect(r.stdout.endsWith('\n\nweb1:\n    done\n')).toBe(true);
      expect(elapsed).toBeGreaterThanOrEqual(8_000);
      console.log(`run -t 2 cmd.run 'sleep 8': printed after ${elapsed} ms`);

      // The find_job pings are ordinary jobs: in jobs, jids and salt_returns.
      expect((await home.run(['db', 'wait'])).code).toBe(0);
      const pings = await home.query<{ jid: string; tgt: unknown; tgt_type: string; minions: unknown }>(
        "select jid, tgt, tgt_type, minions from jobs where fun = 'saltutil.find_job' and arg = $1::jsonb order by jid",
        [JSON.stringify([jid])],
      );
      expect(pings.length).toBeGreaterThanOrEqual(1);
      expect(pings[0]).toMatchObject({ tgt: ['web1'], tgt_type: 'list', minions: ['web1'] });
      const pingJid = pings[0]!.jid;
      expect(pingJid > jid).toBe(true);
      const [reply] = await home.query<{ return: Record<string, unknown> }>('select return from salt_returns where jid = $1', [pingJid]);
      expect(reply?.return).toMatchObject({ jid, fun: 'cmd.run', arg: ['sleep 8; echo done'], pid: expect.any(Number) });
    },
    60_000,
  );

  it.concurrent(
    'Ctrl-C while waiting prints the jid and how to look it up, exits 1, and the job still returns',
    async ({ expect }) => {
      const child = spawn(process.execPath, [CLI_BIN, 'run', '-v', 'web2', 'test.sleep', '5'], {
        env: home.env(),
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const jid = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          const m = /Executing job with jid (\d{20})\n-+\n\n/.exec(stdout);
          if (m) resolve(m[1]!);
        });
        child.once('exit', () => reject(new Error(`exited before publishing: ${stderr}`)));
      });
      const sentAt = Date.now();
      child.kill('SIGINT');
      const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      expect(Date.now() - sentAt).toBeLessThan(3_000);
      expect(code).toBe(1);
      expect(stderr).toBe(
        `\nThis job's jid is: ${jid}\nExiting gracefully on Ctrl-c\n` +
          'The minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n\n' +
          `jobledger runner jobs.lookup_jid ${jid}\n`,
      );
      expect(stdout).not.toContain('web2:');

      // Nothing was cancelled: the return reaches salt_returns.
      let rows: Array<{ return: unknown; success: string }> = [];
      for (const until = Date.now() + 20_000; rows.length === 0 && Date.now() < until;) {
        await new Promise((r) => setTimeout(r, 500));
        expect((await home.run(['db', 'wait'])).code).toBe(0);
        rows = await home.query('select return, success from salt_returns where jid = $1', [jid]);
      }
      expect(rows).toEqual([{ return: true, success: 'true' }]);
    },
    60_000,
  );

  it('an agent that is known but silent is reported after timeout + gather_job_timeout', async () => {
    // db1 stays in presence (Salt's accepted key) but no process hosts it any more.
    expect((await home.run(['down'])).code).toBe(0);
    await home.up(['web1', 'web2']);

    const started = Date.now();
    const r = await home.run(['run', '-t', '1', '--summary', '-v', '*', 'test.ping'], { env: { JOBLEDGER_GATHER_JOB_TIMEOUT: '2' } });
    const elapsed = Date.now() - started;
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('ERROR: Minions returned with non-zero exit code\n');
    const jid = /^Executing job with jid (\d{20})\n/.exec(r.stdout)![1]!;
    const body = r.stdout.split('\n\n\n')[0]!.split('\n').slice(3).join('\n') + '\n';
    expect(sorted(blocks(body))).toEqual([
      ['db1', NO_RESPONSE('db1', jid).split('\n').slice(1).join('\n')],
      ['web1', '    True\n'],
      ['web2', '    True\n'],
    ]);
    expect(body.endsWith(NO_RESPONSE('db1', jid))).toBe(true); // reported last
    expect(r.stdout).toContain(
      '# of minions targeted: 3\n# of minions returned: 2\n# of minions that did not return: 1\n# of minions with errors: 0\n' +
        'Minions not responding: db1\n-------------------------------------------\n',
    );
    expect(elapsed).toBeGreaterThanOrEqual(3_000); // 1 s, one find_job, 2 s
    expect(elapsed).toBeLessThan(10_000);
    console.log(`silent agent reported after ${elapsed} ms (-t 1, gather_job_timeout 2)`);

    const hidden = await home.run(['run', '-t', '1', '--gather-job-timeout', '1', '--hide-timeout', '*', 'test.ping']);
    expect(hidden.code).toBe(0);
    expect(sorted(blocks(hidden.stdout)).map(([id]) => id)).toEqual(['web1', 'web2']);
  }, 200_000);
});
