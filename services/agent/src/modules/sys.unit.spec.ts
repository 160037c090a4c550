import { describe, expect, it } from 'vitest';
import { execute } from '../execute.js';
import { functionNames, type ExecContext } from './index.js';
import { noJobs } from '../testing/jobs.js';

const ctx: ExecContext = {
  id: 'm1',
  jid: '20260101000000000001',
  grains: {},
  signal: new AbortController().signal,
  spawned: () => undefined,
  functionNames,
  jobs: noJobs,
};

describe('sys module', () => {
  it('sys.list_functions returns every function, sorted', async () => {
    const out = (await execute('sys.list_functions', [], ctx)) as { return: string[] };
    expect(out.return).toEqual([...out.return].sort());
    for (const f of [
      'cmd.run',
      'cmd.run_all',
      'cmd.retcode',
      'grains.items',
      'grains.get',
      'sys.list_functions',
      'test.ping',
      'test.echo',
      'test.sleep',
      'test.arg',
      'test.version',
    ]) {
      expect(out.return).toContain(f);
    }
  });

  it('sys.list_functions filters by module name or glob', async () => {
    expect(await execute('sys.list_functions', ['cmd'], ctx)).toMatchObject({ return: ['cmd.retcode', 'cmd.run', 'cmd.run_all'] });
    expect(await execute('sys.list_functions', ['test.p*'], ctx)).toMatchObject({ return: ['test.ping'] });
  });
});
