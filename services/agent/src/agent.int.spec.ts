// The built agent as a real process against a nats-server of this file's own; jobs are published
// as the dispatcher would (job.published), and the test reads what the agent appends.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTS_BUCKET, encodeAgentId, genJid, subjects, type AgentPresence } from '@jobledger/core';
import { resolveReturn, returnsStore } from '@jobledger/runtime';
import { AGENT_MAIN, AgentProcess, buildAgent, eventually, Probe, processRunning, Workspace } from './testing/harness.js';

const IDS = ['192.168.153.141', '192.168.153.142', '192.168.153.136'];
const STREAM = 'AGENT_IT';

let ws: Workspace;
let probe: Probe;
let agent: AgentProcess;
let home: string;

function procFile(id: string, jid: string): string {
  return path.join(home, 'agents', encodeAgentId(id), 'proc', jid);
}

beforeAll(async () => {
  await buildAgent();
  ws = await Workspace.create('agent-it');
  home = path.join(ws.root, 'home');
  await mkdir(home, { recursive: true });
  probe = await Probe.open(ws.nats.url, STREAM);
  agent = await AgentProcess.start({ natsUrl: ws.nats.url, stream: STREAM, home, ids: IDS });
});

afterAll(async () => {
  await agent?.stop();
  await probe?.close();
  await ws?.dispose();
});

describe('agent process', () => {
  it('announces every id (minion_start) and writes its presence before it reports ready', async () => {
    const starts = await eventually(() => probe.of('agent.started').length >= 3 && probe.of('agent.started'), 10_000, 'agent.started');
    expect(starts.map((s) => s.event.data.id).sort()).toEqual([...IDS].sort());
    for (const s of starts) {
      expect(s.subject).toBe(subjects.agentStart(s.event.data.id));
      expect(s.event.data.data).toMatch(
        new RegExp(`^Minion ${s.event.data.id.replace(/\./g, '\\.')} started at \\w{3} \\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d \\d{4}$`),
      );
      expect(s.event.data.grains).toMatchObject({ id: s.event.data.id });
    }
    const kv = await new Kvm(probe.ledger.nc).open(AGENTS_BUCKET);
    for (const id of IDS) {
      const p = (await kv.get(encodeAgentId(id)))!.json<AgentPresence>();
      expect(p).toMatchObject({ id, group: expect.stringMatching(/^agent-[0-9a-f]{16}$/) });
      expect(p.grains).toMatchObject({ id, kernel: 'Linux' });
    }
  });

  it('test.ping to * → one return per id, each between proc.started and proc.ended', async () => {
    const { jid } = await probe.publishJob({ fun: 'test.ping', tgt: '*' });
    const rets = await probe.waitReturns(jid, 3);
    expect(rets.map((r) => r.id).sort()).toEqual([...IDS].sort());
    for (const r of rets) {
      expect(r).toMatchObject({
        cmd: '_return',
        jid,
        fun: 'test.ping',
        fun_args: [],
        return: true,
        retcode: 0,
        success: true,
        user: 'root',
      });
      expect(r._stamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$/);
    }
    const started = probe.procs(jid, 'started');
    const ended = probe.procs(jid, 'ended');
    expect(started.map((p) => p.id).sort()).toEqual([...IDS].sort());
    expect(ended.map((p) => p.id).sort()).toEqual([...IDS].sort());
    for (const p of [...started, ...ended]) expect(p.pid).toBe(agent.pid); // in-process: the agent's pid
    for (const p of ended) expect(p).toMatchObject({ outcome: 'returned', retcode: 0 });
    // Order in the ledger, per id: proc.started < job.returned < proc.ended.
    for (const id of IDS) {
      const seqOf = (type: string) =>
        probe.events.find(
          (e) =>
            e.event.type === type &&
            (e.event.data as { jid?: string; id?: string }).jid === jid &&
            (e.event.data as { id?: string }).id === id,
        )!.seq;
      expect(seqOf('proc.started')).toBeLessThan(seqOf('job.returned'));
      expect(seqOf('job.returned')).toBeLessThan(seqOf('proc.ended'));
    }
    for (const e of probe.of('job.returned', jid)) expect(e.subject).toBe(subjects.jobRet(jid, e.event.data.id));
  });

  it("cmd.run 'echo hi; exit 3' → return hi, retcode 3, success false, run by a child process", async () => {
    const { jid } = await probe.publishJob({ fun: 'cmd.run', arg: ['echo hi; exit 3'], tgt: '*' });
    const rets = await probe.waitReturns(jid, 3);
    for (const r of rets) expect(r).toMatchObject({ return: 'hi', retcode: 3, success: false, fun_args: ['echo hi; exit 3'] });
    const pids = probe.procs(jid, 'started').map((p) => p.pid);
    expect(new Set(pids).size).toBe(3);
    for (const pid of pids) expect(pid).not.toBe(agent.pid);
    for (const p of probe.procs(jid, 'ended')) expect(p).toMatchObject({ outcome: 'returned', retcode: 3 });
  });

  it("an unknown function → Salt's not-available text with retcode 1", async () => {
    const { jid } = await probe.publishJob({ fun: 'foo.bar', tgt: '192.168.153.136' });
    const [r] = await probe.waitReturns(jid, 1);
    expect(r).toMatchObject({ id: '192.168.153.136', return: "'foo.bar' is not available.", retcode: 1, success: false, out: 'nested' });
  });

  it('a glob matches by id: 192.168.153.14* gets exactly two returns', async () => {
    const { jid } = await probe.publishJob({ fun: 'test.echo', arg: ['glob'], tgt: '192.168.153.14*' });
    await probe.waitReturns(jid, 2);
    // A job published afterwards is handled after this one: once it is back, nothing more can come.
    const after = await probe.publishJob({ fun: 'test.ping', tgt: '*' });
    await probe.waitReturns(after.jid, 3);
    expect(
      probe
        .returns(jid)
        .map((r) => r.id)
        .sort(),
    ).toEqual(['192.168.153.141', '192.168.153.142']);
    expect(
      probe
        .procs(jid, 'started')
        .map((p) => p.id)
        .sort(),
    ).toEqual(['192.168.153.141', '192.168.153.142']);
  });

  it('list and pcre targets are evaluated by each id; an unsupported target type matches nobody', async () => {
    const list = await probe.publishJob({ fun: 'test.ping', tgt: ['192.168.153.136', 'absent'], tgt_type: 'list' });
    const pcre = await probe.publishJob({ fun: 'test.ping', tgt: '192\\.168\\.153\\.1[34]1', tgt_type: 'pcre' });
    const grain = await probe.publishJob({ fun: 'test.ping', tgt: 'os:Ubuntu', tgt_type: 'grain' });
    const after = await probe.publishJob({ fun: 'test.ping', tgt: '*' });
    await probe.waitReturns(after.jid, 3);
    expect(probe.returns(list.jid).map((r) => r.id)).toEqual(['192.168.153.136']);
    expect(probe.returns(pcre.jid).map((r) => r.id)).toEqual(['192.168.153.141']);
    expect(probe.returns(grain.jid)).toEqual([]);
  });

  it.each([
    { fun: 'test.sleep', arg: ['2'], how: 'in-process' },
    { fun: 'cmd.run', arg: ['sleep 2'], how: 'child process' },
  ])('a proc file exists while $fun $arg runs ($how) and is gone after', async ({ fun, arg, how }) => {
    const id = '192.168.153.142';
    const { jid } = await probe.publishJob({ fun, arg, tgt: id });
    const file = procFile(id, jid);
    const started = await eventually(() => probe.procs(jid, 'started')[0], 5_000, 'proc.started');
    // A child process's file is written before it starts; an in-process job's once it has run 500 ms.
    if (how === 'child process') expect(existsSync(file)).toBe(true);
    else await eventually(() => existsSync(file), 1_500, 'the proc file of the running in-process job');
    const content = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(content).toEqual({ jid, fun, arg, tgt: id, tgt_type: 'glob', user: 'root', ret: '', pid: started.pid });
    if (fun === 'cmd.run') {
      expect(started.pid).not.toBe(agent.pid);
      expect(readFileSync(`/proc/${started.pid}/cmdline`, 'utf8')).toContain('sleep 2');
    } else {
      expect(started.pid).toBe(agent.pid);
    }
    const [r] = await probe.waitReturns(jid, 1, 10_000);
    expect(r).toMatchObject({ return: fun === 'cmd.run' ? '' : true, retcode: 0 });
    await eventually(() => !existsSync(file), 5_000, 'the proc file to go');
  });

  it('a long job does not hold up others: a ping published after a sleep returns first', async () => {
    const slow = await probe.publishJob({ fun: 'test.sleep', arg: [3], tgt: '192.168.153.141' });
    const fast = await probe.publishJob({ fun: 'test.ping', tgt: '192.168.153.141' });
    await probe.waitReturns(fast.jid, 1, 2_000);
    expect(probe.returns(slow.jid)).toEqual([]);
    await probe.waitReturns(slow.jid, 1, 10_000);
  });

  it('a poison message is terminated and the agent goes on', async () => {
    await probe.publishRaw(subjects.jobNew(genJid()), '{not json');
    await probe.publishRaw(subjects.jobNew(genJid()), JSON.stringify({ type: 'job.published', tag: 'x', data: { fun: 'test.ping' } }));
    const { jid } = await probe.publishJob({ fun: 'test.ping', tgt: '*' });
    await probe.waitReturns(jid, 3);
    expect(await agent.log()).toContain('poison message terminated');
  });

  it('a return larger than a NATS message goes to the object store, and its event names it', async () => {
    // The master makes the bucket at start; the agent only writes into it.
    await returnsStore(probe.ledger);
    const { jid } = await probe.publishJob({ fun: 'cmd.run', arg: ['head -c 1500000 /dev/zero | tr "\\0" a'], tgt: '192.168.153.136' });
    const [r] = await probe.waitReturns(jid, 1);
    expect(r).toMatchObject({
      retcode: 0,
      success: true,
      return: null,
      return_object: {
        bucket: 'ledger_returns',
        name: expect.stringMatching(new RegExp(`^${jid}\\.192_2E168_2E153_2E136\\.[\\w-]{16}$`)),
        size: 1_500_002,
      },
    });
    const whole = await resolveReturn(probe.ledger, r!);
    expect(whole.return).toBe('a'.repeat(1_500_000));
    expect(whole).not.toHaveProperty('return_object');
  });

  it('test.arg carries args and kwargs through the ledger', async () => {
    const { jid } = await probe.publishJob({ fun: 'test.arg', arg: ['a', 2, { __kwarg__: true, k: 'v' }], tgt: '192.168.153.136' });
    const [r] = await probe.waitReturns(jid, 1);
    expect(r).toMatchObject({
      return: { args: ['a', 2], kwargs: { k: 'v' } },
      retcode: 0,
      fun_args: ['a', 2, { __kwarg__: true, k: 'v' }],
    });
  });
});

describe('agent process lifecycle', () => {
  it('SIGTERM lets a running in-process job finish, then exits 0', async () => {
    const home2 = path.join(ws.root, 'home-term');
    const a = await AgentProcess.start({ natsUrl: ws.nats.url, stream: STREAM, home: home2, ids: ['term-1'] });
    const { jid } = await probe.publishJob({ fun: 'test.sleep', arg: [1], tgt: 'term-1' });
    await eventually(() => probe.procs(jid, 'started')[0], 5_000, 'proc.started');
    const exit = await a.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(probe.returns(jid)).toMatchObject([{ id: 'term-1', return: true }]);
    expect(probe.procs(jid, 'ended')).toMatchObject([{ outcome: 'returned', retcode: 0 }]);
    expect(await a.log()).toContain('agent stopped');
  });

  it('calls the --return returners after the return is stored, records a failing one, and waits for them on SIGTERM', async () => {
    const home4 = path.join(ws.root, 'home-returners');
    const written = path.join(home4, 'slow.txt');
    await mkdir(path.join(home4, 'extmods', 'returners'), { recursive: true });
    await writeFile(path.join(home4, 'minion.yaml'), `slow.filename: ${written}\n`);
    await writeFile(
      path.join(home4, 'extmods', 'returners', 'slow.js'),
      `import { appendFile } from 'node:fs/promises';
export default { name: 'slow', create: (ctx) => ({ returner: async (ret) => {
  await new Promise((r) => setTimeout(r, 1500));
  await appendFile(ctx.config['slow.filename'], ret.jid + ' ' + ret.id + ' ' + JSON.stringify(ret.return) + '\\n');
} }) };
export const unused = 1;
`,
    );
    await writeFile(
      path.join(home4, 'extmods', 'returners', 'failing.js'),
      `export default { name: 'failing', create: () => ({ returner: async () => { throw Object.assign(new Error('target down'), { retryable: true }); } }) };\n`,
    );
    const a = await AgentProcess.start({ natsUrl: ws.nats.url, stream: STREAM, home: home4, ids: ['ret-1'] });
    const { jid } = await probe.publishJob({ fun: 'test.echo', arg: ['hi'], tgt: 'ret-1', ret: 'slow, failing' });
    await probe.waitReturns(jid, 1);
    // The agent stops while the slow returner still runs: it is waited for.
    const exit = await a.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(await readFile(written, 'utf8')).toBe(`${jid} ret-1 "hi"\n`);
    await eventually(
      () => probe.events.some((e) => e.event.type === 'returner.failed' && e.event.data.jid === jid),
      5_000,
      'returner.failed',
    );
    const ofJob = probe.events.filter((e) => e.subject.startsWith(`ledger.job.${jid}.`));
    const ret = ofJob.find((e) => e.event.type === 'job.returned')!;
    const failed = ofJob.filter((e) => e.event.type === 'returner.failed');
    expect(failed.map((e) => e.event.data)).toMatchObject([
      { jid, id: 'ret-1', returner: 'failing', error: expect.stringContaining('target down'), retryable: true },
    ]);
    expect(failed[0]!.seq).toBeGreaterThan(ret.seq);
    expect(failed[0]!.subject).toBe(`ledger.job.${jid}.returner.ret-1`);
  });

  it('SIGTERM cancels a job still running after the grace period: proc.signalled + proc.ended (signal 15), no return', async () => {
    const home3 = path.join(ws.root, 'home-grace');
    const a = await AgentProcess.start({
      natsUrl: ws.nats.url,
      stream: STREAM,
      home: home3,
      ids: ['grace-1', 'grace-2'],
      env: { JOBLEDGER_AGENT_STOP_GRACE_MS: '300' },
    });
    const inproc = await probe.publishJob({ fun: 'test.sleep', arg: [30], tgt: 'grace-1' });
    const shell = await probe.publishJob({ fun: 'cmd.run', arg: ['sleep 30'], tgt: 'grace-2' });
    const child = await eventually(() => probe.procs(shell.jid, 'started')[0], 5_000, 'proc.started');
    await eventually(() => probe.procs(inproc.jid, 'started')[0], 5_000, 'proc.started');
    const t0 = Date.now();
    expect(await a.stop()).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(5_000);
    for (const { jid } of [inproc, shell]) {
      expect(probe.returns(jid)).toEqual([]);
      await eventually(() => probe.procs(jid, 'ended')[0], 2_000, 'proc.ended');
      expect(probe.procs(jid, 'signalled')).toMatchObject([{ signal: 15 }]);
      expect(probe.procs(jid, 'ended')).toMatchObject([{ outcome: 'signalled', signal: 15 }]);
    }
    expect(processRunning(child.pid)).toBe(false);
    expect(existsSync(path.join(home3, 'agents', 'grace-1', 'proc', inproc.jid))).toBe(false);
  });

  it('a configuration error is one line on stderr and exit code 2', () => {
    const r = spawnSync(process.execPath, [AGENT_MAIN], {
      env: { PATH: process.env.PATH, JOBLEDGER_NATS_URL: ws.nats.url },
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('jobledger-agent: configuration error: JOBLEDGER_AGENT_IDS is not set\n');
    const r2 = spawnSync(process.execPath, [AGENT_MAIN], { env: { PATH: process.env.PATH, JOBLEDGER_AGENT_IDS: 'a' }, encoding: 'utf8' });
    expect(r2.status).toBe(2);
    expect(r2.stderr).toBe('jobledger-agent: configuration error: JOBLEDGER_NATS_URL is not set\n');
  });
});
