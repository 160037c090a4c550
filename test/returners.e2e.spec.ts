// `jobledger run … --return <returners>` through the real CLI, as Salt's minions call the
// returners of `salt --return`: the built-in local_cache and rawfile_json configured in
// minion.yaml, a plugin execution module (.ts) and a plugin returner (.js) from
// extension_modules, --return_config / --return_kwargs, and an unknown returner.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { decode } from '@msgpack/msgpack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliHome } from './support/cli.js';

const IDS = ['alpha', 'beta', 'gamma'];
const home = new CliHome('jobledger-returners-e2e-');
const cachedir = path.join(home.root, 'minion-cache');
const rawfile = path.join(home.root, 'log', 'returns.json');
const altRawfile = path.join(home.root, 'log', 'alternative.json');
const kwargsRawfile = path.join(home.root, 'log', 'kwargs.json');
const notesFile = path.join(home.root, 'log', 'notes.txt');
const extmods = path.join(home.root, 'extmods');

/** Polls until `check` gives something other than undefined/false. */
async function eventually<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `run --static --show-jid --out json …`: the jid and the returns by id. */
async function runJson(...args: string[]): Promise<{ jid: string; returns: Record<string, unknown> }> {
  const r = await home.run(['run', '--static', '--show-jid', '--out', 'json', ...args]);
  expect(r.stderr).toBe('');
  expect(r.code, r.stdout).toBe(0);
  const m = /^jid: (\d{20})\n([\s\S]*)$/.exec(r.stdout);
  expect(m, r.stdout).not.toBeNull();
  return { jid: m![1]!, returns: JSON.parse(m![2]!) as Record<string, unknown> };
}

/** The JSON lines of a file that belong to `jid`. */
function linesOf(file: string, jid: string): Array<Record<string, unknown>> {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.jid === jid);
}

const unpack = (file: string): unknown => decode(fs.readFileSync(file));

/** The JSON log lines of every agent process. */
function agentLogLines(): Array<Record<string, unknown>> {
  const dir = path.join(home.root, 'logs');
  return fs
    .readdirSync(dir)
    .filter((f) => /^agent-\d+\.log$/.test(f))
    .flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n'))
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Salt's local_cache job directory: `jobs/<h[:2]>/<h[2:]>`, h = sha256(jid). */
function jobDir(jid: string): string {
  const h = createHash('sha256').update(jid).digest('hex');
  return path.join(cachedir, 'jobs', h.slice(0, 2), h.slice(2));
}

beforeAll(async () => {
  fs.writeFileSync(
    path.join(home.root, 'minion.yaml'),
    [
      `cachedir: ${cachedir}`,
      `rawfile_json.filename: ${rawfile}`,
      // --return_config alternative: Salt looks up alternative.rawfile_json.filename first.
      'alternative:',
      '  rawfile_json:',
      `    filename: ${altRawfile}`,
      `notes.filename: ${notesFile}`,
      '',
    ].join('\n'),
  );
  fs.mkdirSync(path.join(extmods, 'modules'), { recursive: true });
  fs.mkdirSync(path.join(extmods, 'returners'), { recursive: true });
  fs.mkdirSync(path.dirname(notesFile), { recursive: true });
  // A custom execution module in TypeScript, in the shape of the built-ins.
  fs.writeFileSync(
    path.join(extmods, 'modules', 'inventory.ts'),
    `interface Bound { named: Record<string, unknown> }
interface Ctx { id: string }
export default {
  answer: {
    kind: 'inproc' as const,
    signature: { name: 'answer', params: [{ name: 'times', default: 1 }] },
    doc: 'Return the answer, times the number given, with the minion id.',
    run: async ({ named }: Bound, ctx: Ctx) => ({ return: { id: ctx.id, answer: 42 * Number(named.times) } }),
  },
};
`,
  );
  // A broken module must not keep the agent (or the other plugins) from starting.
  fs.writeFileSync(path.join(extmods, 'modules', 'broken.js'), 'export default {{\n');
  // A custom returner in JavaScript: one line per return in notes.filename.
  fs.writeFileSync(
    path.join(extmods, 'returners', 'notes.js'),
    `import { appendFile } from 'node:fs/promises';
export default {
  name: 'notes',
  description: 'One line per return in notes.filename',
  create(ctx) {
    return {
      async returner(ret) {
        await appendFile(ctx.config['notes.filename'], JSON.stringify({ host: ctx.hostId, id: ret.id, jid: ret.jid, fun: ret.fun, return: ret.return }) + '\\n');
      },
    };
  },
};
`,
  );
  await home.up(IDS);
}, 200_000);

afterAll(() => home.downAndRemove(), 120_000);

describe('--return, as Salt minions call returners', () => {
  it("run '*' test.ping --return local_cache,rawfile_json: Salt's local_cache layout and one JSON line per agent", async () => {
    const { jid, returns } = await runJson('*', 'test.ping', '--return', 'local_cache,rawfile_json');
    expect(returns).toEqual({ alpha: true, beta: true, gamma: true });

    // rawfile_json: exactly one line per agent, Salt's minion-side return load.
    const lines = await eventually(() => {
      const l = linesOf(rawfile, jid);
      return l.length >= IDS.length && l;
    }, 'the rawfile_json lines');
    expect(lines.map((l) => l.id).sort()).toEqual(IDS);
    for (const line of lines) {
      expect(line).toMatchObject({ jid, fun: 'test.ping', fun_args: [], return: true, retcode: 0, success: true });
      expect(line).not.toHaveProperty('cmd');
      expect(line).not.toHaveProperty('_stamp');
    }

    // local_cache: jobs/<h[:2]>/<h[2:]>/{jid,.load.p,.minions.p,<id>/return.p}
    const dir = jobDir(jid);
    await eventually(() => IDS.every((id) => fs.existsSync(path.join(dir, id, 'return.p'))), 'the local_cache return.p files');
    expect(fs.readFileSync(path.join(dir, 'jid'), 'utf8')).toBe(jid);
    expect(unpack(path.join(dir, '.load.p'))).toMatchObject({ jid, fun: 'test.ping', arg: [], tgt: '*', tgt_type: 'glob' });
    expect(unpack(path.join(dir, '.minions.p'))).toEqual(IDS);
    for (const id of IDS) expect(unpack(path.join(dir, id, 'return.p'))).toEqual({ return: true, retcode: 0, success: true });
    expect(fs.readdirSync(dir).sort()).toEqual(['.load.p', '.minions.p', ...IDS, 'jid'].sort());

    // The returns are in the ledger as always, and no returner failed.
    const rows = await eventually(async () => {
      const r = await home.query<{ id: string }>('SELECT id FROM salt_returns WHERE jid = $1 ORDER BY id', [jid]);
      return r.length === IDS.length && r;
    }, 'the salt_returns rows');
    expect(rows.map((r) => r.id)).toEqual(IDS);
    expect(await home.query("SELECT 1 FROM salt_events WHERE tag LIKE 'salt/job/' || $1 || '/returner/%'", [jid])).toEqual([]);
  });

  it('a plugin execution module (.ts) and a plugin returner (.js) from extension_modules, used by one run', async () => {
    const { jid, returns } = await runJson('alpha', 'inventory.answer', 'times=2', '--return', 'notes');
    expect(returns).toEqual({ alpha: { id: 'alpha', answer: 84 } });
    const notes = await eventually(() => {
      const l = linesOf(notesFile, jid);
      return l.length > 0 && l;
    }, 'the notes line');
    expect(notes).toEqual([{ host: 'alpha', id: 'alpha', jid, fun: 'inventory.answer', return: { id: 'alpha', answer: 84 } }]);

    // The plugins show like built-ins; the broken file is skipped.
    const { returns: fns } = await runJson('beta', 'sys.list_functions', 'inventory');
    expect(fns).toEqual({ beta: ['inventory.answer'] });
    const { returns: docs } = await runJson('beta', 'sys.doc', 'inventory.answer');
    expect(docs).toEqual({ beta: { 'inventory.answer': 'Return the answer, times the number given, with the minion id.' } });
    const { returns: mods } = await runJson('beta', 'sys.list_modules');
    expect(mods.beta).toContain('inventory');
    expect(mods.beta).not.toContain('broken');
    const skipped = agentLogLines().filter((l) => l.msg === 'execution module plugin skipped');
    expect(skipped).toHaveLength(IDS.length);
    expect(skipped.every((l) => String(l.file).endsWith('broken.js'))).toBe(true);
    const { returns: rets } = await runJson('gamma', 'sys.list_returners');
    expect(rets.gamma).toEqual(expect.arrayContaining(['local_cache', 'notes', 'rawfile_json']));
    expect(rets.gamma).toEqual([...(rets.gamma as string[])].sort());
  });

  it('--return_config and --return_kwargs choose the options as in Salt', async () => {
    const alt = await runJson('beta', 'test.ping', '--return', 'rawfile_json', '--return_config', 'alternative');
    const kw = await runJson('gamma', 'test.echo', 'hi', '--return', 'rawfile_json', '--return-kwargs', `{filename: ${kwargsRawfile}}`);
    const altLines = await eventually(() => {
      const l = linesOf(altRawfile, alt.jid);
      return l.length > 0 && l;
    }, 'the line in the --return_config file');
    expect(altLines).toEqual([expect.objectContaining({ id: 'beta', return: true, ret_config: 'alternative' })]);
    const kwLines = await eventually(() => {
      const l = linesOf(kwargsRawfile, kw.jid);
      return l.length > 0 && l;
    }, 'the line in the --return_kwargs file');
    expect(kwLines).toEqual([expect.objectContaining({ id: 'gamma', return: 'hi', ret_kwargs: { filename: kwargsRawfile } })]);
    // Neither went to the default file.
    expect(linesOf(rawfile, alt.jid)).toEqual([]);
    expect(linesOf(rawfile, kw.jid)).toEqual([]);
  });

  it('--return no_such_returner: the returns are still stored, and returner.failed is recorded per agent', async () => {
    const { jid, returns } = await runJson('*', 'test.ping', '--return', 'no_such_returner');
    expect(returns).toEqual({ alpha: true, beta: true, gamma: true });
    const rows = await eventually(async () => {
      const r = await home.query<{ id: string; success: string }>('SELECT id, success FROM salt_returns WHERE jid = $1 ORDER BY id', [jid]);
      return r.length === IDS.length && r;
    }, 'the salt_returns rows');
    expect(rows).toEqual(IDS.map((id) => ({ id, success: 'true' })));
    const failed = await eventually(async () => {
      const r = await home.query<{ tag: string; data: Record<string, unknown> }>(
        "SELECT tag, data FROM salt_events WHERE tag LIKE 'salt/job/' || $1 || '/returner/%' ORDER BY tag",
        [jid],
      );
      return r.length === IDS.length && r;
    }, 'the returner.failed events');
    expect(failed.map((e) => e.tag)).toEqual(IDS.map((id) => `salt/job/${jid}/returner/${id}`));
    for (const [i, e] of failed.entries()) {
      expect(e.data).toMatchObject({ jid, id: IDS[i], returner: 'no_such_returner', retryable: false });
      expect(e.data.error).toMatch(/no_such_returner/);
    }
    // Each agent logged it with the job's context.
    const logged = agentLogLines().filter((l) => l.msg === 'returner failed; the return is stored in the ledger' && l.jid === jid);
    expect(logged.map((l) => [l.agent, l.returner]).sort()).toEqual(IDS.map((id) => [id, 'no_such_returner']));
  });
});
