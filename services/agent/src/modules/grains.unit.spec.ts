import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { execute } from '../execute.js';
import { hostGrains, traverse } from '../grains.js';
import { functionNames, type ExecContext } from './index.js';
import { noJobs } from '../testing/jobs.js';

const grains = { ...hostGrains(), id: 'web1', roles: ['db', { nested: { deep: 'yes' } }] };
const ctx: ExecContext = {
  id: 'web1',
  jid: '20260101000000000001',
  grains,
  signal: new AbortController().signal,
  spawned: () => undefined,
  functionNames,
  jobs: noJobs,
};

describe('grains module', () => {
  it('grains.items returns the core grains of the host plus the id', async () => {
    const out = await execute('grains.items', [], ctx);
    const g = (out as { return: Record<string, unknown> }).return;
    expect(g.id).toBe('web1');
    expect(g.kernel).toBe(os.type());
    expect(g.nodename).toBe(os.hostname());
    expect(g.num_cpus).toBe(os.cpus().length);
    expect(g.mem_total).toBe(Math.floor(os.totalmem() / 1048576));
    expect(g.ipv4).toContain('127.0.0.1');
    for (const k of ['host', 'os', 'os_family', 'osfamily', 'cpuarch', 'ipv6', 'jobledger_version', 'osrelease'])
      expect(g).toHaveProperty(k);
  });

  it('grains.get walks nested keys with ":" and defaults to an empty string', async () => {
    expect(await execute('grains.get', ['id'], ctx)).toMatchObject({ return: 'web1' });
    expect(await execute('grains.get', ['roles:0'], ctx)).toMatchObject({ return: 'db' });
    expect(await execute('grains.get', ['roles:nested:deep'], ctx)).toMatchObject({ return: 'yes' });
    expect(await execute('grains.get', ['nope'], ctx)).toMatchObject({ return: '', retcode: 0 });
    expect(await execute('grains.get', ['nope', 'dflt'], ctx)).toMatchObject({ return: 'dflt' });
    expect(await execute('grains.get', ['roles|0', { __kwarg__: true, delimiter: '|' }], ctx)).toMatchObject({ return: 'db' });
  });

  it('traverse gives the default for missing paths and out-of-range indexes', () => {
    expect(traverse({ a: [1, 2] }, 'a:5', 'd')).toBe('d');
    expect(traverse({ a: 'x' }, 'a:b', 'd')).toBe('d');
  });
});
