import { mkdtemp, realpath } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { execute } from '../execute.js';
import { functionNames, type ExecContext } from './index.js';
import { noJobs } from '../testing/jobs.js';

function ctx(signal = new AbortController().signal, onSpawn: (pid: number) => void = () => undefined): ExecContext {
  return { id: 'm1', jid: '20260101000000000001', grains: { id: 'm1' }, signal, spawned: onSpawn, functionNames, jobs: noJobs };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('cmd module', () => {
  it('cmd.run returns the output without the trailing newline, and the exit code as retcode', async () => {
    expect(await execute('cmd.run', ['echo hi; exit 3'], ctx())).toEqual({ kind: 'returned', return: 'hi', retcode: 3 });
    expect(await execute('cmd.run', ['printf "a\\nb\\n\\n"'], ctx())).toEqual({ kind: 'returned', return: 'a\nb', retcode: 0 });
  });

  it('cmd.run interleaves stderr with stdout, as Salt does', async () => {
    const out = await execute('cmd.run', ['echo one; echo two >&2; echo three'], ctx());
    expect(out).toMatchObject({ return: 'one\ntwo\nthree', retcode: 0 });
  });

  it('cmd.run runs the command through /bin/sh -c in its own child process', async () => {
    let pid: number | undefined;
    const out = await execute(
      'cmd.run',
      ['echo $$'],
      ctx(undefined, (p) => (pid = p)),
    );
    expect(pid).toBeGreaterThan(0);
    expect(pid).not.toBe(process.pid);
    expect(out).toMatchObject({ return: String(pid) });
  });

  it('cmd.run honours cwd, env and stdin', async () => {
    const dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'agent-cmd-')));
    const out = await execute('cmd.run', ['pwd; echo "$FOO"; cat', { __kwarg__: true, cwd: dir, env: { FOO: 'bar' }, stdin: 'in' }], ctx());
    expect(out).toMatchObject({ return: `${dir}\nbar\nin`, retcode: 0 });
    expect(await execute('cmd.run', ['true', { __kwarg__: true, cwd: '/does/not/exist' }], ctx())).toMatchObject({
      return: "ERROR: Specified cwd '/does/not/exist' either not absolute or does not exist",
      retcode: 1,
    });
  });

  it('the command carries the jid and the agent id it runs as, even with env given', async () => {
    const out = await execute(
      'cmd.run',
      ['echo "$JOBLEDGER_JID $JOBLEDGER_AGENT_ID"', { __kwarg__: true, env: { JOBLEDGER_JID: 'x' } }],
      ctx(),
    );
    expect(out).toMatchObject({ return: '20260101000000000001 m1', retcode: 0 });
  });

  it('cmd.run_all returns pid, retcode, stdout and stderr separately', async () => {
    let pid: number | undefined;
    const out = await execute(
      'cmd.run_all',
      ['echo out; echo err >&2; exit 4'],
      ctx(undefined, (p) => (pid = p)),
    );
    expect(out).toEqual({ kind: 'returned', return: { pid, retcode: 4, stdout: 'out', stderr: 'err' }, retcode: 4 });
  });

  it('cmd.retcode returns the exit code, which is also the retcode', async () => {
    expect(await execute('cmd.retcode', ['exit 7'], ctx())).toEqual({ kind: 'returned', return: 7, retcode: 7 });
    expect(await execute('cmd.retcode', ['echo noise'], ctx())).toEqual({ kind: 'returned', return: 0, retcode: 0 });
  });

  it('timeout kills the command and returns Salt’s text with retcode 1', async () => {
    const out = await execute('cmd.run', ['sleep 20', { __kwarg__: true, timeout: 1 }], ctx());
    expect(out).toEqual({ kind: 'returned', return: 'sleep 20 : Timed out after 1 seconds', retcode: 1 });
  });

  it('a cancelled job kills the whole process group and ends as signalled', async () => {
    const ac = new AbortController();
    let pid = 0;
    const p = execute(
      'cmd.run',
      ['sleep 30; echo never'],
      ctx(ac.signal, (q) => (pid = q)),
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(alive(pid)).toBe(true);
    ac.abort();
    expect(await p).toEqual({ kind: 'signalled', signal: 15 });
    expect(alive(pid)).toBe(false);
  });

  it('a command without its argument is an invalid call', async () => {
    expect(await execute('cmd.run', [], ctx())).toMatchObject({
      return: "Passed invalid arguments to cmd.run: run() missing 1 required positional argument: 'cmd'",
      retcode: 1,
    });
  });
});
