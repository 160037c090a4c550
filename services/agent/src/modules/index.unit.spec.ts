import { describe, expect, it } from 'vitest';
import { SaltTexts } from '@jobledger/core';
import { execute } from '../execute.js';
import { bindArgs, functionNames, lookupFunction, type ExecContext } from './index.js';
import { noJobs } from '../testing/jobs.js';

const ctx: ExecContext = {
  id: 'm1',
  jid: '20260101000000000001',
  grains: { id: 'm1' },
  signal: new AbortController().signal,
  spawned: () => undefined,
  functionNames,
  jobs: noJobs,
};

describe('function registry', () => {
  it("an unknown function returns Salt's '<fun>' is not available. with retcode 1", async () => {
    const out = await execute('foo.bar', [], ctx);
    expect(out).toEqual({ kind: 'returned', return: "'foo.bar' is not available.", retcode: 1, out: 'nested' });
    expect(out).toMatchObject({ return: SaltTexts.notAvailable('foo.bar') });
    expect(await execute('test.nope', ['x'], ctx)).toMatchObject({ return: "'test.nope' is not available.", retcode: 1 });
  });

  it('knows each module function and whether it runs in a child process', () => {
    expect(lookupFunction('cmd.run')?.kind).toBe('shell');
    expect(lookupFunction('cmd.run_all')?.kind).toBe('shell');
    expect(lookupFunction('cmd.retcode')?.kind).toBe('shell');
    expect(lookupFunction('test.sleep')?.kind).toBe('inproc');
    expect(lookupFunction('grains.items')?.kind).toBe('inproc');
    expect(lookupFunction('toString')).toBeUndefined();
    expect(lookupFunction('test.constructor')).toBeUndefined();
  });

  it('a zero retcode becomes 1 when the return is a mapping with a false result or success (Salt)', async () => {
    // cmd.run_all returns a mapping without those keys: its retcode is the exit code.
    const out = await execute('test.echo', [{ result: false }], ctx);
    expect(out).toMatchObject({ retcode: 1 });
    expect(await execute('test.echo', [{ result: true, success: 1 }], ctx)).toMatchObject({ retcode: 0 });
  });
});

describe('argument binding (Python texts)', () => {
  const sig = { name: 'f', params: ['a', 'b', { name: 'c', default: 3 }] };

  it('fills positional, keyword and default values', () => {
    expect(bindArgs(sig, [1, 2], {}).named).toEqual({ a: 1, b: 2, c: 3 });
    expect(bindArgs(sig, [1], { b: 5, c: 6 }).named).toEqual({ a: 1, b: 5, c: 6 });
  });

  it('names what is missing, extra or repeated', () => {
    expect(() => bindArgs(sig, [], {})).toThrow("f() missing 2 required positional arguments: 'a' and 'b'");
    expect(() => bindArgs({ name: 'g', params: ['a', 'b', 'c'] }, [], {})).toThrow(
      "g() missing 3 required positional arguments: 'a', 'b', and 'c'",
    );
    expect(() => bindArgs(sig, [1, 2, 3, 4], {})).toThrow('f() takes from 2 to 3 positional arguments but 4 were given');
    expect(() => bindArgs({ name: 'h', params: ['a'] }, [1, 2], {})).toThrow('h() takes 1 positional argument but 2 were given');
    expect(() => bindArgs(sig, [1, 2], { a: 1 })).toThrow("f() got multiple values for argument 'a'");
  });
});
