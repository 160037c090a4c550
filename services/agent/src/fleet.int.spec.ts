// One agent process hosting a fleet of ids, restarted and killed: catch-up, no double runs,
// interrupted jobs recorded as lost.

import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENTS_BUCKET, encodeAgentId, PROGRESS_BUCKET, subjects, type AgentPresence } from '@jobledger/core';
import { AgentProcess, buildAgent, eventually, Probe, processRunning, Workspace } from './testing/harness.js';

const N = 100;
const IDS = Array.from({ length: N }, (_, i) => `node-${String(i).padStart(3, '0')}.fleet.example.com`);
const STREAM = 'AGENT_FLEET';

let ws: Workspace;
let probe: Probe;
let home: string;
let agent: AgentProcess | undefined;

const start = (ids: readonly string[] = IDS, env?: Record<string, string>, dir = home) =>
  AgentProcess.start({ natsUrl: ws.nats.url, stream: STREAM, home: dir, ids, env });

/** Returns stored for (jid, id): counted on the subject, as the ledger holds them. */
const returnsOn = (jid: string, id: string) => probe.events.filter((e) => e.subject === subjects.jobRet(jid, id)).length;

beforeAll(async () => {
  await buildAgent();
  ws = await Workspace.create('agent-fleet');
  home = path.join(ws.root, 'home');
  await mkdir(home, { recursive: true });
  probe = await Probe.open(ws.nats.url, STREAM);
});

afterAll(async () => {
  await agent?.stop();
  await probe?.close();
  await ws?.dispose();
});

describe(`one agent process hosting ${N} ids`, () => {
  it(`answers test.ping to * from every id`, async () => {
    const t0 = performance.now();
    agent = await start();
    const startMs = performance.now() - t0;

    const timings: number[] = [];
    for (let round = 0; round < 3; round++) {
      const t1 = performance.now();
      const { jid } = await probe.publishJob({ fun: 'test.ping', tgt: '*' });
      const rets = await probe.waitReturns(jid, N, 20_000);
      timings.push(performance.now() - t1);
      expect(new Set(rets.map((r) => r.id))).toEqual(new Set(IDS));
      expect(rets.every((r) => r.return === true && r.retcode === 0)).toBe(true);
      expect(probe.procs(jid, 'started')).toHaveLength(N);
      expect(probe.procs(jid, 'ended')).toHaveLength(N);
    }
    console.log(
      `[fleet] ${N} ids: start-up to ready ${startMs.toFixed(0)} ms; test.ping * → ${N} returns + proc.ended: ` +
        timings.map((t) => `${t.toFixed(0)} ms`).join(', '),
    );
  });

  it('a job published while the process is down runs once after the restart, and not again after another', async () => {
    const id = IDS[42]!;
    expect((await agent!.stop()).code).toBe(0);
    const { jid, seq } = await probe.publishJob({ fun: 'test.echo', arg: ['while down'], tgt: id });

    agent = await start();
    await probe.waitReturns(jid, 1, 15_000);
    expect(returnsOn(jid, id)).toBe(1);
    expect(probe.returns(jid)[0]).toMatchObject({ id, return: 'while down', retcode: 0 });

    expect((await agent.stop()).code).toBe(0);
    agent = await start();
    // Handled in order: once a later job is back, the earlier one has been considered.
    const later = await probe.publishJob({ fun: 'test.ping', tgt: id });
    await probe.waitReturns(later.jid, 1);
    expect(returnsOn(jid, id)).toBe(1);
    expect(probe.procs(jid, 'started')).toHaveLength(1);

    const progress = await new Kvm(probe.ledger.nc).open(PROGRESS_BUCKET);
    await eventually(
      async () => Number((await progress.get(encodeAgentId(id)))?.string()) >= seq,
      15_000,
      'lastSeq in the progress bucket',
    );
  });

  it('a job interrupted by kill -9 of the agent is recorded as lost on the next start and never run again', async () => {
    const id = IDS[7]!;
    const { jid } = await probe.publishJob({ fun: 'cmd.run', arg: ['sleep 30'], tgt: id });
    const started = await eventually(() => probe.procs(jid, 'started')[0], 5_000, 'proc.started');
    const procFile = path.join(home, 'agents', encodeAgentId(id), 'proc', jid);
    expect(existsSync(procFile)).toBe(true);
    await agent!.kill9();
    // The shell job outlives its agent…
    expect(processRunning(started.pid)).toBe(true);

    agent = await start();
    const ended = await eventually(() => probe.procs(jid, 'ended')[0], 10_000, 'proc.ended');
    expect(ended).toMatchObject({ jid, id, fun: 'cmd.run', pid: started.pid, outcome: 'lost' });
    expect(existsSync(procFile)).toBe(false);
    // …until the next start finds it and kills it.
    await eventually(() => !processRunning(started.pid), 5_000, 'the orphaned job process to be killed');

    // Not run again, even after another restart with the job's message redelivered.
    const later = await probe.publishJob({ fun: 'test.ping', tgt: id });
    await probe.waitReturns(later.jid, 1);
    expect((await agent.stop()).code).toBe(0);
    agent = await start();
    const last = await probe.publishJob({ fun: 'test.ping', tgt: id });
    await probe.waitReturns(last.jid, 1);
    expect(probe.procs(jid, 'started')).toHaveLength(1);
    expect(probe.procs(jid, 'ended')).toHaveLength(1);
    expect(probe.returns(jid)).toEqual([]);
  });

  it('a job inside the agent, killed by kill -9 before it had a proc file, is recorded as lost on the next start, from the ledger', async () => {
    const id = IDS[9]!;
    expect((await agent!.stop()).code).toBe(0);
    agent = await start(IDS, { JOBLEDGER_AGENT_PROC_FILE_AFTER_MS: '600000' });
    const { jid, seq } = await probe.publishJob({ fun: 'test.sleep', arg: ['30'], tgt: id });
    const started = await eventually(() => probe.procs(jid, 'started')[0], 5_000, 'proc.started');
    expect(started.pid).toBe(agent.pid);
    const procFile = path.join(home, 'agents', encodeAgentId(id), 'proc', jid);
    expect(existsSync(procFile)).toBe(false);
    // Later jobs of the id are handled meanwhile; its stored progress stays below the sleep.
    const later = await probe.publishJob({ fun: 'test.ping', tgt: id });
    await probe.waitReturns(later.jid, 1);
    const progress = await new Kvm(probe.ledger.nc).open(PROGRESS_BUCKET);
    const stored = async () => Number((await progress.get(encodeAgentId(id)))?.string());
    await eventually(async () => (await stored()) === seq - 1, 15_000, 'progress written, held below the running job');
    await agent.kill9();

    agent = await start();
    const ended = await eventually(() => probe.procs(jid, 'ended')[0], 10_000, 'proc.ended');
    expect(ended).toMatchObject({ jid, id, fun: 'test.sleep', pid: started.pid, outcome: 'lost' });
    // Logged just after the event is appended: wait for the line rather than race it.
    await eventually(
      async () => (await agent!.log()).includes('job interrupted by the previous agent process'),
      5_000,
      'the interrupted-job log line',
    );
    const last = await probe.publishJob({ fun: 'test.ping', tgt: id });
    await probe.waitReturns(last.jid, 1);
    expect(probe.procs(jid, 'started')).toHaveLength(1);
    expect(probe.returns(jid)).toEqual([]);
    expect(returnsOn(later.jid, id)).toBe(1);
    await eventually(async () => (await stored()) >= last.seq, 15_000, 'progress past the recorded job');
  });

  it('on catch-up, a job older than the catch-up window is not run', async () => {
    const id = IDS[3]!;
    expect((await agent!.stop()).code).toBe(0);
    const old = await probe.publishJob({ fun: 'test.ping', tgt: id });
    await new Promise((r) => setTimeout(r, 2_100));
    const fresh = await probe.publishJob({ fun: 'test.ping', tgt: id });
    agent = await start(IDS, { JOBLEDGER_CATCHUP_SECONDS: '2' });
    await probe.waitReturns(fresh.jid, 1);
    const after = await probe.publishJob({ fun: 'test.ping', tgt: id });
    await probe.waitReturns(after.jid, 1);
    expect(probe.procs(old.jid, 'started')).toEqual([]);
    expect(probe.returns(old.jid)).toEqual([]);
    expect(await agent.log()).toContain('older than the catch-up window');
  });
});

describe('an id that lags its group', () => {
  it('is caught up: the group consumer is recreated at the lagging id and only that id runs the missed job', async () => {
    const dir = path.join(ws.root, 'home-lag');
    await mkdir(dir, { recursive: true });
    const group = { JOBLEDGER_AGENT_GROUP: 'lag-group' };

    // lag-b is known (presence written), then its process goes away.
    const b = await start(['lag-b'], undefined, dir);
    expect((await b.stop()).code).toBe(0);
    // The group's consumer moves past a job for lag-b while lag-b is not hosted anywhere.
    const a = await start(['lag-a'], group, dir);
    const missed = await probe.publishJob({ fun: 'test.echo', arg: ['missed'], tgt: 'lag-*' });
    await probe.waitReturns(missed.jid, 1);
    expect(probe.returns(missed.jid).map((r) => r.id)).toEqual(['lag-a']);
    expect((await a.stop()).code).toBe(0);

    // lag-b joins the group: it catches up from its own lastSeq.
    const ab = await start(['lag-a', 'lag-b'], group, dir);
    try {
      await probe.waitReturns(missed.jid, 2);
      expect(
        probe
          .returns(missed.jid)
          .map((r) => r.id)
          .sort(),
      ).toEqual(['lag-a', 'lag-b']);
      const later = await probe.publishJob({ fun: 'test.ping', tgt: 'lag-*' });
      await probe.waitReturns(later.jid, 2);
      expect(returnsOn(missed.jid, 'lag-a')).toBe(1);
      expect(returnsOn(missed.jid, 'lag-b')).toBe(1);
      expect(await ab.log()).toContain('recreating the consumer for catch-up');
    } finally {
      await ab.stop();
    }
  });
});

describe('an id whose lastSeq is only in its presence value (written by an agent of an earlier version)', () => {
  it('catches up from there, and gets a progress entry', async () => {
    const id = 'old-presence';
    const dir = path.join(ws.root, 'home-old-presence');
    await mkdir(dir, { recursive: true });
    const before = await probe.publishJob({ fun: 'test.ping', tgt: 'nobody-at-all' });
    const presence: AgentPresence = { id, group: 'old-group', lastSeq: before.seq, startedAt: new Date().toISOString(), grains: { id } };
    // Created here when this test runs alone (agents create the bucket at their start).
    await (await new Kvm(probe.ledger.nc).create(AGENTS_BUCKET, { history: 1 })).put(encodeAgentId(id), JSON.stringify(presence));
    const missed = await probe.publishJob({ fun: 'test.echo', arg: ['missed'], tgt: id });

    const a = await start([id], undefined, dir);
    try {
      await probe.waitReturns(missed.jid, 1);
      expect(returnsOn(missed.jid, id)).toBe(1);
      const progress = await new Kvm(probe.ledger.nc).open(PROGRESS_BUCKET);
      await eventually(
        async () => Number((await progress.get(encodeAgentId(id)))?.string()) >= missed.seq,
        15_000,
        'lastSeq in the progress bucket',
      );
    } finally {
      await a.stop();
    }
  });
});
