import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReturnerRegistry } from '@jobledger/returners';
import { execute } from '../execute.js';
import { functionNames, type ExecContext } from './index.js';
import { noJobs } from '../testing/jobs.js';

const JID = '20260101000000000007';
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
let dir: string;
let registry: ReturnerRegistry;
let ctx: ExecContext;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'jobledger-ret-module-'));
  registry = new ReturnerRegistry({ role: 'agent', hostId: 'web1', config: { cachedir: dir }, logger: silent });
  ctx = {
    id: 'web1',
    jid: '20260101000000000099',
    grains: {},
    signal: new AbortController().signal,
    spawned: () => undefined,
    functionNames,
    jobs: noJobs,
    returner: (name) => registry.get(name),
  };
  // What `run … --return local_cache` left on this agent.
  const lc = await registry.get('local_cache');
  await lc.saveLoad!(JID, { jid: JID, fun: 'test.ping', arg: [], tgt: '*', tgt_type: 'glob', user: 'root' }, ['web1', 'web2']);
  for (const id of ['web1', 'web2'])
    await lc.returner({ id, jid: JID, fun: 'test.ping', fun_args: [], return: true, retcode: 0, success: true });
});

afterAll(async () => {
  await registry.closeAll();
  await rm(dir, { recursive: true, force: true });
});

describe("Salt's ret module, reading back through a returner", () => {
  it('ret.get_jid and ret.get_jids read what local_cache stored', async () => {
    expect(await execute('ret.get_jid', ['local_cache', JID], ctx)).toMatchObject({
      return: { web1: { return: true, retcode: 0, success: true }, web2: { return: true, retcode: 0, success: true } },
      retcode: 0,
    });
    const jids = (await execute('ret.get_jids', ['local_cache'], ctx)) as { return: Record<string, Record<string, unknown>> };
    expect(Object.keys(jids.return)).toEqual([JID]);
    expect(jids.return[JID]).toMatchObject({ Function: 'test.ping', Target: '*', 'Target-type': 'glob', User: 'root' });
  });

  it("a function the returner lacks, and an unknown returner, are errors in Salt's words", async () => {
    expect(await execute('ret.get_fun', ['rawfile_json', 'test.ping'], ctx)).toMatchObject({
      return: "ERROR: 'rawfile_json.get_fun' returner function not implemented yet.",
      retcode: 1,
    });
    expect(await execute('ret.get_jids', ['no_such'], ctx)).toMatchObject({
      return: expect.stringMatching(/^ERROR: .*no_such/),
      retcode: 1,
    });
  });
});
