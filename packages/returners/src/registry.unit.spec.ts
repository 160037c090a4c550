import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReturnerError, type ReturnLoad } from '@jobledger/core';
import { builtinReturners } from './builtins.js';
import { ReturnerRegistry, UnknownReturnerError } from './registry.js';
import { recordingLogger, type RecordingLogger } from './testing/recording-logger.js';

let dir: string;
let logger: RecordingLogger;
let registry: ReturnerRegistry;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'jobledger-registry-'));
  logger = recordingLogger();
});

afterEach(async () => {
  await registry?.closeAll();
  await rm(dir, { recursive: true, force: true });
});

const RET: ReturnLoad = {
  id: 'web1',
  jid: '20250301120000123456',
  fun: 'test.ping',
  fun_args: [],
  return: true,
  retcode: 0,
  success: true,
};

/** A plugin that appends what it receives, tagged with its own name, to `<out>`. */
function pluginSource(name: string, out: string, typed: boolean): string {
  const ann = typed ? ': { id: string; jid: string }' : '';
  return `
import { appendFileSync } from 'node:fs';
${typed ? "import type { ReturnerModule } from '@jobledger/core';" : ''}
const mod${typed ? ': ReturnerModule' : ''} = {
  name: ${JSON.stringify(name)},
  description: 'test plugin',
  create(ctx${typed ? ': { role: string; hostId: string; retConfig?: string }' : ''}) {
    return {
      async returner(ret${ann}) {
        appendFileSync(${JSON.stringify(out)}, JSON.stringify({ plugin: ${JSON.stringify(name)}, id: ret.id, role: ctx.role, host: ctx.hostId, retConfig: ctx.retConfig ?? null }) + '\\n');
      },
    };
  },
};
export default mod;
`;
}

async function lines(file: string): Promise<unknown[]> {
  return (await readFile(file, 'utf8'))
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as unknown);
}

describe('ReturnerRegistry', () => {
  it('lists the built-ins, sorted', () => {
    registry = new ReturnerRegistry({ role: 'agent', hostId: 'web1', config: {}, logger });
    expect(registry.names()).toEqual(['local_cache', 'multi_returner', 'pgjsonb', 'rawfile_json', 'smtp', 'syslog']);
    expect(builtinReturners.map((m) => m.name).sort()).toEqual(registry.names());
  });

  it("refuses an unknown returner with Salt's minion text, not retryable", async () => {
    registry = new ReturnerRegistry({ role: 'agent', hostId: 'web1', config: {}, logger });
    const err = (await registry.get('nosuch').catch((e: unknown) => e)) as UnknownReturnerError;
    expect(err).toBeInstanceOf(UnknownReturnerError);
    expect(err).toBeInstanceOf(ReturnerError);
    expect(err.retryable).toBe(false);
    expect(err.returner).toBe('nosuch');
    expect(err.message).toBe("Returner nosuch.returner could not be loaded: 'nosuch.returner' is not available.");
  });

  it('caches one instance per (name, return_config); return_kwargs make no new instance', async () => {
    registry = new ReturnerRegistry({ role: 'agent', hostId: 'web1', config: { cachedir: dir }, logger });
    const a = await registry.get('local_cache');
    expect(await registry.get('local_cache')).toBe(a);
    const b = await registry.get('local_cache', { retConfig: 'alt' });
    expect(b).not.toBe(a);
    expect(await registry.get('local_cache', { retConfig: 'alt' })).toBe(b);
    for (let i = 0; i < 50; i++) expect(await registry.get('local_cache', { retKwargs: { x: i } })).toBe(a);
    expect(await registry.get('local_cache', { retConfig: 'alt', retKwargs: { x: 1 } })).toBe(b);
  });

  it('loads .ts, .js and .mjs plugins, lets a plugin override a built-in, and skips broken files', async () => {
    const ext = path.join(dir, '_returners');
    await mkdir(ext);
    const out = path.join(dir, 'out.jsonl');
    await writeFile(path.join(ext, 'typed.ts'), pluginSource('typed_returner', out, true));
    await writeFile(path.join(ext, 'plain.js'), pluginSource('plain_returner', out, false));
    await writeFile(path.join(ext, 'module.mjs'), pluginSource('syslog', out, false));
    await writeFile(path.join(ext, 'broken.ts'), 'export default { name: "broken", create( {{{ ');
    await writeFile(path.join(ext, 'throws.js'), 'throw new Error("plugin exploded at import");');
    await writeFile(path.join(ext, 'shapeless.js'), 'export default { hello: 1 };');
    await writeFile(path.join(ext, 'notes.txt'), 'not a plugin');

    registry = new ReturnerRegistry({
      role: 'master',
      hostId: 'master_master',
      config: {},
      logger,
      extensionDirs: [ext, path.join(dir, 'missing')],
    });
    await registry.loadPlugins();
    expect(registry.names()).toEqual([
      'local_cache',
      'multi_returner',
      'pgjsonb',
      'plain_returner',
      'rawfile_json',
      'smtp',
      'syslog',
      'typed_returner',
    ]);
    expect(registry.pluginFile('syslog')).toBe(path.join(ext, 'module.mjs'));

    await (await registry.get('typed_returner', { retConfig: 'alt' })).returner(RET);
    await (await registry.get('plain_returner')).returner({ ...RET, id: 'web2' });
    await (await registry.get('syslog')).returner({ ...RET, id: 'web3' });
    expect(await lines(out)).toEqual([
      { plugin: 'typed_returner', id: 'web1', role: 'master', host: 'master_master', retConfig: 'alt' },
      { plugin: 'plain_returner', id: 'web2', role: 'master', host: 'master_master', retConfig: null },
      { plugin: 'syslog', id: 'web3', role: 'master', host: 'master_master', retConfig: null },
    ]);

    const problems = [...logger.messages('error'), ...logger.messages('warn')].join('\n');
    expect(problems).toContain(`Returner plugin ${path.join(ext, 'broken.ts')} could not be loaded`);
    expect(problems).toContain(`Returner plugin ${path.join(ext, 'throws.js')} could not be loaded: plugin exploded at import`);
    expect(problems).toContain(`Returner plugin ${path.join(ext, 'shapeless.js')} has no default export`);
    expect(problems).toContain(`Returner extension directory ${path.join(dir, 'missing')} could not be read`);
    expect(logger.messages('info')).toContain(`Returner plugin ${path.join(ext, 'module.mjs')} overrides the built-in returner syslog`);
  });

  it('multi_returner writes to every listed returner and merges reads', async () => {
    const events = path.join(dir, 'events.jsonl');
    registry = new ReturnerRegistry({
      role: 'master',
      hostId: 'master_master',
      config: { cachedir: path.join(dir, 'cache'), multi_returner: ['local_cache', 'rawfile_json'], 'rawfile_json.filename': events },
      logger,
    });
    const multi = await registry.get('multi_returner');
    await multi.returner(RET);
    await multi.returner({ ...RET, id: 'web2', return: false });
    expect(await lines(events)).toEqual([RET, { ...RET, id: 'web2', return: false }]);
    const local = await registry.get('local_cache');
    expect(await local.getJid!(RET.jid)).toEqual({
      web1: { return: true, retcode: 0, success: true },
      web2: { return: false, retcode: 0, success: true },
    });
    // rawfile_json has no get_jid: the merge says which returner lacks it
    await expect(multi.getJid!(RET.jid)).rejects.toThrow("'rawfile_json.get_jid' returner function not implemented yet.");

    const reads = new ReturnerRegistry({
      role: 'master',
      hostId: 'master_master',
      config: { cachedir: path.join(dir, 'cache'), multi_returner: 'local_cache' },
      logger,
    });
    const load = { jid: RET.jid, fun: 'test.ping', tgt: '*', tgt_type: 'glob', arg: [] };
    const m2 = await reads.get('multi_returner');
    await m2.saveLoad!(RET.jid, load, ['web1', 'web2']);
    await m2.saveLoad!(RET.jid, { ...RET, cmd: '_return' });
    expect(await m2.getLoad!(RET.jid)).toEqual({ ...load, Minions: ['web1', 'web2'] });
    expect(Object.keys(await m2.getJid!(RET.jid)).sort()).toEqual(['web1', 'web2']);
    await reads.closeAll();
  });

  it('multi_returner without a list is a clear configuration error', async () => {
    registry = new ReturnerRegistry({ role: 'master', hostId: 'm', config: {}, logger });
    await expect(registry.get('multi_returner')).rejects.toMatchObject({
      retryable: false,
      message: expect.stringContaining('lists no returners'),
    });
  });
});

/** The code block of docs/returners.md that starts with the comment line `// <file>`. */
async function docsExample(file: string): Promise<string> {
  const doc = await readFile(new URL('../../../docs/returners.md', import.meta.url), 'utf8');
  const start = doc.indexOf(`// ${file}\n`);
  expect(start, `example ${file} in docs/returners.md`).toBeGreaterThan(0);
  return doc.slice(start, doc.indexOf('\n```', start));
}

describe('the plugin examples of docs/returners.md', () => {
  it('webhook (agent): getReturnerOptions from @jobledger/core, --return_config and ret_kwargs per call', async () => {
    const received: { url: string; body: unknown }[] = [];
    let status = 200;
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ url: req.url ?? '', body: JSON.parse(body) as unknown });
        res.writeHead(status).end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const ext = path.join(dir, 'returners');
      await mkdir(ext);
      await writeFile(path.join(ext, 'webhook.js'), await docsExample('$JOBLEDGER_HOME/extmods/returners/webhook.js'));
      registry = new ReturnerRegistry({
        role: 'agent',
        hostId: 'web1',
        config: { 'webhook.url': `${base}/main`, 'alt.webhook': { url: `${base}/alt` } },
        logger,
        extensionDirs: [ext],
      });
      expect(registry.names()).not.toContain('webhook');
      const hook = await registry.get('webhook');
      expect(logger.messages('error')).toEqual([]);
      await hook.returner(RET);
      await hook.returner({ ...RET, id: 'web2', ret_kwargs: { url: `${base}/kwargs` } });
      await (await registry.get('webhook', { retConfig: 'alt' })).returner({ ...RET, id: 'web3', ret_config: 'alt' });
      expect(received.map((r) => [r.url, (r.body as ReturnLoad).id])).toEqual([
        ['/main', 'web1'],
        ['/kwargs', 'web2'],
        ['/alt', 'web3'],
      ]);
      status = 503;
      await expect(hook.returner(RET)).rejects.toMatchObject({ retryable: true, message: expect.stringContaining('503') });
    } finally {
      server.close();
    }
  });

  it('event_log (master): event_return and returner append JSON lines', async () => {
    const ext = path.join(dir, 'returners');
    await mkdir(ext);
    await writeFile(path.join(ext, 'event_log.js'), await docsExample('$JOBLEDGER_HOME/extmods/returners/event_log.js'));
    const out = path.join(dir, 'events.jsonl');
    registry = new ReturnerRegistry({
      role: 'master',
      hostId: 'm1_master',
      config: { event_log: { path: out } },
      logger,
      extensionDirs: [ext],
    });
    const r = await registry.get('event_log');
    await r.eventReturn!([
      { tag: 'salt/job/20250301120000123456/new', data: { jid: '20250301120000123456' } },
      { tag: 'salt/job/20250301120000123456/ret/web1', data: { id: 'web1' } },
    ]);
    await r.returner(RET);
    expect(await lines(out)).toEqual([
      { master: 'm1_master', tag: 'salt/job/20250301120000123456/new', data: { jid: '20250301120000123456' } },
      { master: 'm1_master', tag: 'salt/job/20250301120000123456/ret/web1', data: { id: 'web1' } },
      RET,
    ]);
    const missing = new ReturnerRegistry({
      role: 'master',
      hostId: 'm1_master',
      config: { 'event_log.path': path.join(dir, 'no', 'such', 'dir', 'x.jsonl') },
      logger,
      extensionDirs: [ext],
    });
    await expect((await missing.get('event_log')).eventReturn!([{ tag: 't', data: {} }])).rejects.toMatchObject({ retryable: false });
    await missing.closeAll();
  });
});
