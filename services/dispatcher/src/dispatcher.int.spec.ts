// Integration: the built dispatcher (`node services/dispatcher/dist/main.js`) against a real
// nats-server of this file's own. Own server because the presence bucket name is fixed
// (`ledger_agents`), so agents of other test files on a shared server would be "known" here.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import {
  apiSubjects,
  decodeEvent,
  encodeAgentId,
  ErrorCodes,
  jidToMicros,
  microsToJid,
  msgIds,
  SaltTexts,
  subjects,
  type AgentPresence,
  type JobPublished,
} from '@jobledger/core';
import { createLogger, openAgentsBucket, openLedger, type Ledger } from '@jobledger/runtime';
import { startNatsServer, type NatsServerHandle } from '../../../packages/cli/src/embedded/nats-server.js';
import { AgentDirectory } from './presence.js';
import { JobPublisher, PUBLISH_ID_HEADER } from './job-publisher.js';
import { publishReply, type PublishReply, type PublishRequestInput, type PublishSuccess } from './publish-request.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const mainJs = path.join(repoRoot, 'services/dispatcher/dist/main.js');
const STREAM = 'LEDGER_DISPATCHER_INT';
const IDS = ['192.168.153.141', 'db_1', 'web-1'];

let tmp: string;
let server: NatsServerHandle;
let ledger: Ledger;
let kv: KV;
let client: NatsConnection;
let dispatcher: ChildProcess;
let readyFile: string;
let logFile: string;

function presence(id: string): AgentPresence {
  return { id, group: 'test-group', lastSeq: 0, startedAt: new Date().toISOString(), grains: { id } };
}

async function announce(id: string): Promise<void> {
  await kv.put(encodeAgentId(id), JSON.stringify(presence(id)));
}

async function request(req: PublishRequestInput | string): Promise<PublishReply> {
  const body = typeof req === 'string' ? req : JSON.stringify(req);
  const msg = await client.request(apiSubjects.publish, body, { timeout: 15_000 });
  return publishReply.parse(msg.json());
}

async function ok(req: PublishRequestInput): Promise<PublishSuccess> {
  const reply = await request(req);
  if ('error' in reply) throw new Error(`unexpected error reply: ${JSON.stringify(reply)}`);
  return reply;
}

async function streamMessages(): Promise<number> {
  return (await ledger.jsm.streams.info(STREAM)).state.messages;
}

/** Every message stored under `ledger.job.<jid>.>`: subject → count. */
async function jobSubjects(jid: string): Promise<Record<string, number>> {
  const info = await ledger.jsm.streams.info(STREAM, { subjects_filter: subjects.jobAll(jid) });
  return info.state.subjects ?? {};
}

async function publishedEvent(seq: number): Promise<{ event: JobPublished; subject: string; msgId: string | undefined }> {
  const m = await ledger.jsm.streams.getMessage(STREAM, { seq });
  if (!m) throw new Error(`no message ${seq}`);
  const event = decodeEvent(m.data);
  if (event.type !== 'job.published') throw new Error(`message ${seq} is ${event.type}`);
  return { event, subject: m.subject, msgId: m.header?.get('Nats-Msg-Id') };
}

async function waitForFile(file: string, child: ChildProcess, ms = 20_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`dispatcher exited with ${child.exitCode}`);
    try {
      return await readFile(file, 'utf8');
    } catch {
      if (Date.now() > deadline) throw new Error(`${file} did not appear`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

function dispatcherEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    JOBLEDGER_NATS_URL: server.url,
    JOBLEDGER_STREAM: STREAM,
    JOBLEDGER_HOME: path.join(tmp, 'home'),
    JOBLEDGER_MASTER_ID: 'test_master',
    JOBLEDGER_LOG_FILE: logFile,
    JOBLEDGER_READY_FILE: readyFile,
    ...extra,
  };
}

beforeAll(async () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-b', 'services/dispatcher'], { cwd: repoRoot, stdio: 'inherit' });

  tmp = await mkdtemp(path.join(os.tmpdir(), 'jobledger-dispatcher-'));
  server = await startNatsServer({ storeDir: path.join(tmp, 'nats') });
  readyFile = path.join(tmp, 'dispatcher.ready');
  logFile = path.join(tmp, 'dispatcher.log');

  // What an agent does before it reports ready: make sure of the stream and announce its ids.
  ledger = await openLedger({ natsUrl: server.url, stream: STREAM, name: 'test-agent' });
  kv = await openAgentsBucket(ledger);
  for (const id of IDS) await announce(id);

  dispatcher = spawn(process.execPath, [mainJs], { env: dispatcherEnv(), stdio: ['ignore', 'inherit', 'inherit'] });
  expect((await waitForFile(readyFile, dispatcher)).trim()).toBe(String(dispatcher.pid));
  client = await connect({ servers: server.url, name: 'test-cli' });
});

afterAll(async () => {
  if (dispatcher && dispatcher.exitCode === null) {
    dispatcher.kill('SIGTERM');
    await exited(dispatcher);
  }
  await client?.close();
  await ledger?.nc.close();
  await server?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('dispatcher publish path (jobledger.api.publish)', () => {
  it('`*` assigns a jid, expects every agent and appends exactly one job.published with Salt’s fields', async () => {
    const before = await streamMessages();
    const reply = await ok({ tgt: '*', fun: 'test.ping' });

    expect(reply.jid).toMatch(/^\d{20}$/);
    expect(reply.minions).toEqual([...IDS].sort());
    expect(reply.missing).toEqual([]);
    expect(await streamMessages()).toBe(before + 1);
    expect(await jobSubjects(reply.jid)).toEqual({ [subjects.jobNew(reply.jid)]: 1 });

    const { event, subject, msgId } = await publishedEvent(reply.seq);
    expect(subject).toBe(`ledger.job.${reply.jid}.new`);
    expect(msgId).toBe(msgIds.jobNew(reply.jid));
    expect(event.tag).toBe(`salt/job/${reply.jid}/new`);
    expect(event.data).toEqual({
      jid: reply.jid,
      tgt: '*',
      tgt_type: 'glob',
      user: 'root',
      fun: 'test.ping',
      arg: [],
      minions: [...IDS].sort(),
      missing: [],
      ret: '',
      _stamp: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?$/),
    });
    // The jid is UTC wall-clock time with microseconds, close to now.
    const drift = Number(jidToMicros(reply.jid) / 1000n) - Date.now();
    expect(Math.abs(drift)).toBeLessThan(5_000);
  });

  it('`nomatch*` answers Salt’s no-minions text and appends nothing', async () => {
    const before = await streamMessages();
    const reply = await request({ tgt: 'nomatch*', fun: 'test.ping' });
    expect(reply).toEqual({ error: { code: ErrorCodes.NoMinions, message: SaltTexts.noMinionsMatched } });
    expect(SaltTexts.noMinionsMatched).toBe('No minions matched the target. No command was sent, no jid was assigned.');
    expect(await streamMessages()).toBe(before);
  });

  it('a list target with an unknown name: one minion, the name in missing', async () => {
    const reply = await ok({ tgt: ['192.168.153.141', 'ghost'], tgt_type: 'list', fun: 'test.ping' });
    expect(reply.minions).toEqual(['192.168.153.141']);
    expect(reply.missing).toEqual(['ghost']);
    const { event } = await publishedEvent(reply.seq);
    expect(event.data).toMatchObject({
      tgt: ['192.168.153.141', 'ghost'],
      tgt_type: 'list',
      minions: ['192.168.153.141'],
      missing: ['ghost'],
    });
  });

  it('a comma-separated list target is split like Salt (-L "a,b")', async () => {
    const reply = await ok({ tgt: 'db_1, ghost', tgt_type: 'list', fun: 'test.ping' });
    expect(reply).toMatchObject({ minions: ['db_1'], missing: ['ghost'] });
    expect((await publishedEvent(reply.seq)).event.data.tgt).toEqual(['db_1', 'ghost']);
  });

  it('a list target of unknown names only: no minions, nothing appended', async () => {
    const before = await streamMessages();
    expect(await request({ tgt: ['ghost', 'phantom'], tgt_type: 'list', fun: 'test.ping' })).toEqual({
      error: { code: ErrorCodes.NoMinions, message: SaltTexts.noMinionsMatched },
    });
    expect(await streamMessages()).toBe(before);
  });

  it('pcre targets match from the start', async () => {
    expect((await ok({ tgt: 'web|db', tgt_type: 'pcre', fun: 'test.ping' })).minions).toEqual(['db_1', 'web-1']);
  });

  it('merges kwarg into Salt’s publish arg and carries user, ret, ret_config, ret_kwargs, timeout, metadata', async () => {
    const reply = await ok({
      tgt: 'web-*',
      fun: 'test.arg',
      arg: ['a', 2],
      kwarg: { x: 1, nested: { y: [true] } },
      user: 'sudo_alice',
      ret: 'pgjsonb',
      ret_config: 'alternative',
      ret_kwargs: { db: 'other' },
      timeout: 7,
      metadata: { ticket: 'OPS-1' },
    });
    expect(reply.minions).toEqual(['web-1']);
    const { event } = await publishedEvent(reply.seq);
    expect(event.data).toMatchObject({
      fun: 'test.arg',
      arg: ['a', 2, { x: 1, nested: { y: [true] }, __kwarg__: true }],
      user: 'sudo_alice',
      ret: 'pgjsonb',
      ret_config: 'alternative',
      ret_kwargs: { db: 'other' },
      timeout: 7,
      metadata: { ticket: 'OPS-1' },
    });
  });

  it('counts a presence key put just before the request (list, glob and `*`)', async () => {
    await announce('late-list');
    expect(await ok({ tgt: ['late-list'], tgt_type: 'list', fun: 'test.ping' })).toMatchObject({ minions: ['late-list'], missing: [] });

    await announce('late-glob');
    expect((await ok({ tgt: 'late-glob*', fun: 'test.ping' })).minions).toEqual(['late-glob']);

    // A target that already matches others: only the freshness check can see the new id.
    await announce('late-star');
    expect((await ok({ tgt: '*', fun: 'test.ping' })).minions).toContain('late-star');
  });

  it('forgets an agent whose presence key was deleted', async () => {
    await announce('gone-soon');
    expect((await ok({ tgt: 'gone-soon', fun: 'test.ping' })).minions).toEqual(['gone-soon']);
    await kv.delete(encodeAgentId('gone-soon'));
    expect(await request({ tgt: 'gone-soon', fun: 'test.ping' })).toEqual({
      error: { code: ErrorCodes.NoMinions, message: SaltTexts.noMinionsMatched },
    });
  });

  it('requests in a tight loop get strictly increasing jids', async () => {
    const jids: string[] = [];
    for (let i = 0; i < 25; i++) jids.push((await ok({ tgt: '*', fun: 'test.ping' })).jid);
    for (let i = 1; i < jids.length; i++) expect(jids[i]! > jids[i - 1]!, `${jids[i]} > ${jids[i - 1]}`).toBe(true);
  });

  it('concurrent requests get distinct jids, appended in jid order', async () => {
    const replies = await Promise.all(Array.from({ length: 50 }, () => ok({ tgt: '*', fun: 'test.ping' })));
    const jids = replies.map((r) => r.jid);
    expect(new Set(jids).size).toBe(jids.length);
    const bySeq = [...replies].sort((a, b) => a.seq - b.seq).map((r) => r.jid);
    expect(bySeq).toEqual([...jids].sort());
  });

  it('an invalid request gets a validation error and appends nothing', async () => {
    const before = await streamMessages();
    const missingFun = await request({ tgt: '*' } as PublishRequestInput);
    expect(missingFun).toMatchObject({ error: { code: ErrorCodes.Validation, message: expect.stringContaining('fun') } });
    expect(await request('{not json')).toMatchObject({
      error: { code: ErrorCodes.Validation, message: expect.stringMatching(/^request is not a JSON document/) },
    });
    expect(await request({ tgt: 'role:web', tgt_type: 'pillar', fun: 'test.ping' })).toEqual({
      error: { code: ErrorCodes.Validation, message: "target type 'pillar' is not supported yet" },
    });
    expect(await streamMessages()).toBe(before);
  });

  it('measures request latency', async () => {
    const samples: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = process.hrtime.bigint();
      await ok({ tgt: '*', fun: 'test.ping' });
      samples.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    samples.sort((a, b) => a - b);
    const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!.toFixed(2);
    console.log(
      `dispatcher publish latency over ${samples.length} requests: p50 ${q(0.5)} ms, p90 ${q(0.9)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms`,
    );
    expect(Number(q(0.5))).toBeLessThan(50);
  });
});

describe('grain, address and nodegroup targets', () => {
  const put = (id: string, grains?: Record<string, unknown>) => kv.put(encodeAgentId(id), JSON.stringify({ ...presence(id), grains }));

  it('predicts them from the grains in the presence bucket; an agent without grains counts (greedy)', async () => {
    await put('g-linux', { id: 'g-linux', kernel: 'Linux', ipv4: ['127.0.0.1', '10.0.0.7'] });
    await put('g-bsd', { id: 'g-bsd', kernel: 'FreeBSD', ipv4: ['10.9.9.9'] });
    await put('g-nograins');
    const minions = async (req: PublishRequestInput) => (await ok(req)).minions.filter((m) => m.startsWith('g-'));

    expect(await minions({ tgt: 'kernel:linux', tgt_type: 'grain', fun: 'test.ping' })).toEqual(['g-linux', 'g-nograins']);
    expect(await minions({ tgt: 'kernel|Free*', tgt_type: 'grain', delimiter: '|', fun: 'test.ping' })).toEqual(['g-bsd', 'g-nograins']);
    expect(await minions({ tgt: 'kernel:(free|net)bsd', tgt_type: 'grain_pcre', fun: 'test.ping' })).toEqual(['g-bsd', 'g-nograins']);
    expect(await minions({ tgt: '10.0.0.0/24', tgt_type: 'ipcidr', fun: 'test.ping' })).toEqual(['g-linux', 'g-nograins']);
    expect(await minions({ tgt: 'g-* and not G@kernel:Linux', tgt_type: 'compound', fun: 'test.ping' })).toEqual(['g-bsd']);

    const reply = await ok({ tgt: 'kernel|Free*', tgt_type: 'grain', delimiter: '|', fun: 'test.ping' });
    expect((await publishedEvent(reply.seq)).event.data).toMatchObject({ tgt: 'kernel|Free*', tgt_type: 'grain', delimiter: '|' });
  });

  it('a compound L@ name no agent has is missing', async () => {
    expect(await ok({ tgt: 'L@g-linux,g-ghost or g-bsd', tgt_type: 'compound', fun: 'test.ping' })).toMatchObject({
      minions: ['g-bsd', 'g-linux'],
      missing: ['g-ghost'],
    });
  });

  it('expands nodegroups from $JOBLEDGER_HOME/master.yaml, re-read when it changes', async () => {
    const file = path.join(tmp, 'home', 'master.yaml');
    expect(await request({ tgt: 'linux', tgt_type: 'nodegroup', fun: 'test.ping' })).toEqual({
      error: { code: ErrorCodes.Validation, message: `Node group linux unavailable in ${file}` },
    });
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, 'nodegroups:\n  linux: G@kernel:Linux and g-*\n  pair: [g-bsd, g-linux]\n  both: N@pair and not N@linux\n');
    const reply = await ok({ tgt: 'linux', tgt_type: 'nodegroup', fun: 'test.ping' });
    expect(reply.minions).toEqual(['g-linux', 'g-nograins']);
    expect((await publishedEvent(reply.seq)).event.data).toMatchObject({ tgt: ['G@kernel:Linux', 'and', 'g-*'], tgt_type: 'compound' });
    expect((await ok({ tgt: 'both', tgt_type: 'nodegroup', fun: 'test.ping' })).minions).toEqual(['g-bsd']);
    expect((await ok({ tgt: 'N@pair', tgt_type: 'compound', fun: 'test.ping' })).minions).toEqual(['g-bsd', 'g-linux']);
  });
});

describe('one jid is published once', () => {
  it('a publisher that draws a jid already taken by another one assigns the next microsecond', async () => {
    const logger = createLogger('dispatcher-test', { level: 'silent' });
    const agents = await AgentDirectory.open({ kv, logger });
    const fixed = jidToMicros('20260101000000000000');
    const clock = () => fixed; // both publishers read the same instant
    const a = new JobPublisher({ ledger, agents, clock, logger });
    const b = new JobPublisher({ ledger, agents, clock, logger });
    const job = { tgt: '*', tgt_type: 'glob' as const, fun: 'test.ping', arg: [], user: 'root', ret: '' };
    try {
      const first = await a.publish(job);
      const second = await b.publish(job);
      expect(first.jid).toBe('20260101000000000000');
      expect(second.jid).toBe(microsToJid(fixed + 1n));
      expect(second.seq).toBeGreaterThan(first.seq);
      expect(await jobSubjects(first.jid)).toEqual({ [subjects.jobNew(first.jid)]: 1 });
      const stored = await ledger.jsm.streams.getMessage(STREAM, { seq: first.seq });
      expect(stored?.header?.get(PUBLISH_ID_HEADER)).toMatch(/.+/);
    } finally {
      await agents.stop();
    }
  });
});

describe('a request sent again (no reply: the dispatcher holding it died)', () => {
  it('with the same request_id: the job stored the first time is the answer, stored once', async () => {
    await announce('again-1');
    const req = { tgt: 'again-1', tgt_type: 'list' as const, fun: 'test.ping', request_id: 'cli-retry-0001' };
    const before = await streamMessages();
    const first = await ok(req);
    const again = await ok(req);
    const concurrent = await Promise.all([ok(req), ok(req)]);
    expect([again, ...concurrent]).toEqual([first, first, first]);
    expect(await streamMessages()).toBe(before + 1);
    expect((await publishedEvent(first.seq)).msgId).toBe('request:cli-retry-0001');
    // Another request id is another job.
    const other = await ok({ ...req, request_id: 'cli-retry-0002' });
    expect(other.jid).not.toBe(first.jid);
  });

  it('refuses a request_id that is not 1–64 letters, digits, - or _', async () => {
    const reply = await request({ tgt: '*', fun: 'test.ping', request_id: 'a b' });
    expect(reply).toMatchObject({ error: { code: 'VALIDATION' } });
    expect(JSON.stringify(reply)).toContain('request_id must be 1–64 letters, digits, - or _');
  });
});

describe('process', () => {
  it('a configuration error is one stderr line and exit code 2', async () => {
    const child = spawn(process.execPath, [mainJs], { env: dispatcherEnv({ JOBLEDGER_NATS_URL: '' }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await exited(child)).toBe(2);
    expect(stderr).toBe('jobledger-dispatcher: configuration error: JOBLEDGER_NATS_URL is not set\n');
  });

  it('SIGTERM stops it gracefully (exit 0) after it answered what it had', async () => {
    const pending = request({ tgt: '*', fun: 'test.ping' });
    await client.flush(); // the server has routed the request to the dispatcher
    dispatcher.kill('SIGTERM');
    expect('error' in (await pending)).toBe(false);
    expect(await exited(dispatcher)).toBe(0);
    const log = await readFile(logFile, 'utf8');
    expect(log).toContain('dispatcher stopped');
  });
});
