import { describe, expect, it } from 'vitest';
import { execute } from '../execute.js';
import { AGENT_VERSION } from '../version.js';
import { functionNames, type ExecContext } from './index.js';
import { noJobs } from '../testing/jobs.js';

function ctx(signal = new AbortController().signal): ExecContext {
  return { id: 'm1', jid: '20260101000000000001', grains: { id: 'm1' }, signal, spawned: () => undefined, functionNames, jobs: noJobs };
}

describe('test module', () => {
  it('test.ping returns true', async () => {
    expect(await execute('test.ping', [], ctx())).toEqual({ kind: 'returned', return: true, retcode: 0 });
  });

  it('test.echo returns its text as given', async () => {
    expect(await execute('test.echo', ['hello world'], ctx())).toMatchObject({ return: 'hello world', retcode: 0 });
    expect(await execute('test.echo', [{ __kwarg__: true, text: 'by name' }], ctx())).toMatchObject({ return: 'by name' });
  });

  it('test.arg returns positional args and kwargs without __kwarg__', async () => {
    const out = await execute('test.arg', ['a', 1, ['x'], { __kwarg__: true, foo: 'bar', n: 2 }], ctx());
    expect(out).toEqual({ kind: 'returned', return: { args: ['a', 1, ['x']], kwargs: { foo: 'bar', n: 2 } }, retcode: 0 });
  });

  it('test.arg turns key=value strings into kwargs, as the minion does', async () => {
    const out = await execute('test.arg', ['a', 'foo=bar', 'x==y'], ctx());
    expect(out).toMatchObject({ return: { args: ['a', 'x==y'], kwargs: { foo: 'bar' } } });
  });

  it('test.version returns the package version', async () => {
    expect(await execute('test.version', [], ctx())).toMatchObject({ return: AGENT_VERSION, retcode: 0 });
    expect(AGENT_VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('test.sleep sleeps n seconds and returns true', async () => {
    const t0 = Date.now();
    expect(await execute('test.sleep', [1], ctx())).toMatchObject({ return: true, retcode: 0 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(990);
  });

  it('test.sleep is cancelled by its AbortSignal and ends as signalled (no return)', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    const p = execute('test.sleep', ['30'], ctx(ac.signal));
    setTimeout(() => ac.abort(), 50);
    expect(await p).toEqual({ kind: 'signalled', signal: 15 });
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('test.retcode sets the retcode', async () => {
    expect(await execute('test.retcode', [], ctx())).toMatchObject({ return: true, retcode: 42 });
    expect(await execute('test.retcode', [3], ctx())).toMatchObject({ retcode: 3 });
  });

  it('a function that throws returns Salt’s exception text with the stack, retcode 1', async () => {
    const out = await execute('test.exception', ['boom'], ctx());
    expect(out).toMatchObject({ kind: 'returned', retcode: 1, out: 'nested' });
    const ret = (out as { return: string }).return;
    expect(ret).toMatch(/^The minion function caused an exception: Error: boom\n\s+at /);
  });

  it('bad arguments return Salt’s "Passed invalid arguments" text, retcode 1', async () => {
    expect(await execute('test.ping', ['extra'], ctx())).toEqual({
      kind: 'returned',
      return: 'Passed invalid arguments to test.ping: ping() takes 0 positional arguments but 1 was given',
      retcode: 1,
      out: 'nested',
    });
    expect(await execute('test.echo', [], ctx())).toMatchObject({
      return: "Passed invalid arguments to test.echo: echo() missing 1 required positional argument: 'text'",
      retcode: 1,
    });
    expect(await execute('test.echo', ['a', { __kwarg__: true, nope: 1 }], ctx())).toMatchObject({
      return: "Passed invalid arguments to test.echo: echo() got an unexpected keyword argument 'nope'",
    });
    expect(await execute('test.sleep', ['abc'], ctx())).toMatchObject({ retcode: 1 });
  });
});
