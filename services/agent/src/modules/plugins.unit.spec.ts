import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execute } from '../execute.js';
import { noJobs } from '../testing/jobs.js';
import { FunctionTable, loadPluginModules, pluginModule, PluginLoadError, type ExecContext } from './index.js';

/** A logger whose lines are kept, to see what was reported. */
function recordingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'jl-plugins-'));
  await mkdir(path.join(dir, 'sub'));
  await writeFile(
    path.join(dir, 'disk.ts'),
    `interface Args { named: Record<string, unknown> }
const usage = {
  kind: 'inproc' as const,
  signature: { name: 'usage', params: [{ name: 'mount', default: '/' }] },
  doc: 'Return the usage of a mount point.',
  run: async ({ named }: Args) => ({ return: { mount: named.mount, used: 42 } }),
};
export default { usage, _private: usage };
`,
  );
  await writeFile(
    path.join(dir, 'hello.mjs'),
    `export const __virtualname__ = 'greet';
export default { world: { signature: { name: 'world', params: ['who'] }, doc: 'Say hello.', run: async ({ named }) => ({ return: 'hello ' + named.who, retcode: 3 }) } };
`,
  );
  await writeFile(path.join(dir, 'broken.js'), 'export default { oops: ;\n');
  await writeFile(path.join(dir, 'shapeless.js'), 'export default { f: { run: 1 } };\n');
  await writeFile(path.join(dir, 'README.txt'), 'not a module');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ctxOf = (table: FunctionTable): ExecContext => ({
  id: 'm1',
  jid: '20260101000000000001',
  grains: {},
  signal: new AbortController().signal,
  spawned: () => undefined,
  functionNames: () => table.names(),
  lookupFunction: (f) => table.lookup(f),
  returnerNames: async () => ['local_cache', 'rawfile_json', 'syslog'],
  jobs: noJobs,
});

describe('execution module plugins', () => {
  it('loads .ts and .mjs modules, skips broken and shapeless files with a logged error', async () => {
    const { log, lines } = recordingLogger();
    const modules = await loadPluginModules(dir, log);
    expect(Object.keys(modules).sort()).toEqual(['disk', 'greet']);
    expect(Object.keys(modules.disk!)).toEqual(['usage']);
    const skipped = lines.filter((l) => l.msg === 'execution module plugin skipped').map((l) => path.basename(String(l.file)));
    expect(skipped.sort()).toEqual(['broken.js', 'shapeless.js']);
    expect(JSON.stringify(lines)).toContain("function 'f' has no run(args, ctx) function");
  });

  it('a missing directory is no plugins', async () => {
    expect(await loadPluginModules(path.join(dir, 'nowhere'), recordingLogger().log)).toEqual({});
  });

  it('runs plugin functions like built-ins, lists and documents them', async () => {
    const table = new FunctionTable(await loadPluginModules(dir, recordingLogger().log));
    const ctx = ctxOf(table);
    expect(await execute('disk.usage', [], ctx)).toEqual({ kind: 'returned', return: { mount: '/', used: 42 }, retcode: 0 });
    expect(await execute('greet.world', ['you'], ctx)).toEqual({ kind: 'returned', return: 'hello you', retcode: 3 });
    expect(await execute('disk._private', [], ctx)).toMatchObject({ return: "'disk._private' is not available." });
    expect(await execute('sys.list_functions', ['disk'], ctx)).toMatchObject({ return: ['disk.usage'] });
    expect(await execute('sys.list_modules', [], ctx)).toMatchObject({ return: expect.arrayContaining(['disk', 'greet', 'test']) });
    expect(await execute('sys.doc', ['disk.usage'], ctx)).toMatchObject({ return: { 'disk.usage': 'Return the usage of a mount point.' } });
    const all = (await execute('sys.doc', [], ctx)) as { return: Record<string, string> };
    expect(all.return['test.ping']).toMatch(/Returns True/);
    expect(all.return['greet.world']).toBe('Say hello.');
  });

  it('sys.list_returners lists the returners, or those matching globs', async () => {
    const ctx = ctxOf(new FunctionTable());
    expect(await execute('sys.list_returners', [], ctx)).toMatchObject({ return: ['local_cache', 'rawfile_json', 'syslog'] });
    expect(await execute('sys.list_returners', ['r*', 'sys*'], ctx)).toMatchObject({ return: ['rawfile_json', 'syslog'] });
    expect(await execute('sys.list_returners', [], { ...ctx, returnerNames: undefined })).toMatchObject({ return: [] });
  });

  it('refuses a file without functions or with a bad module name', () => {
    expect(() => pluginModule('/x/a.js', { default: {} })).toThrow(PluginLoadError);
    expect(() => pluginModule('/x/a.js', {})).toThrow(/no default export/);
    expect(() => pluginModule('/x/my-mod.js', { default: { f: { signature: { params: [] }, run: async () => ({ return: 1 }) } } })).toThrow(
      /not a module name/,
    );
  });

  it('a plugin module replaces the built-in module of the same name, as in Salt', () => {
    const table = new FunctionTable({
      test: { only: { kind: 'inproc', signature: { name: 'only', params: [] }, doc: '', run: async () => ({ return: 1 }) } },
    });
    expect(table.lookup('test.only')).toBeDefined();
    expect(table.lookup('test.ping')).toBeUndefined();
  });
});
