// `jobledger audit trail` against a real nats-server: events appended to the ledger stream are
// read back in stream order, filtered by subject, time, agent and user; a broken message is
// shown with its error and the trail goes on; it stops at the stream's end as of its start.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeEvent,
  genJid,
  jobPublishedTag,
  jobReturnedTag,
  minionStartedText,
  msgIds,
  procTag,
  runnerPublishedTag,
  runnerReturnedTag,
  saltStamp,
  subjects,
  type LedgerEvent,
} from '@jobledger/core';
import { openLedger, type Ledger } from '@jobledger/runtime';
import { startNatsServer, type NatsServerHandle } from '../packages/cli/src/embedded/nats-server.js';
import { CliHome } from './support/cli.js';
import { auditTrailCommand, firstSeqAt, readSubject, type TrailOptions } from '../packages/cli/src/commands/audit-trail.js';

let dir = '';
let nats: NatsServerHandle;
let ledger: Ledger;
const STREAM = 'LEDGER';

const J = genJid();
const K = genJid();
const R = genJid();
/** Stream time between the first and the second batch of events. */
let between = '';
/** Sequence of the broken message. */
let badSeq = 0;

const published = (jid: string, user: string, minions: string[]): LedgerEvent => ({
  type: 'job.published',
  tag: jobPublishedTag(jid),
  data: { jid, tgt: minions, tgt_type: 'list', user, fun: 'cmd.run', arg: ['id'], minions, missing: [], ret: '', _stamp: saltStamp() },
});
const returned = (jid: string, id: string, user: string, retcode: number): LedgerEvent => ({
  type: 'job.returned',
  tag: jobReturnedTag(jid, id),
  data: {
    cmd: '_return',
    id,
    jid,
    fun: 'cmd.run',
    fun_args: ['id'],
    return: 'uid=0(root)',
    retcode,
    success: retcode === 0,
    user,
    _stamp: saltStamp(),
  },
});

async function append(subject: string, body: Uint8Array | string, msgID?: string): Promise<number> {
  return (await ledger.js.publish(subject, body, msgID === undefined ? undefined : { msgID })).seq;
}

async function trail(opts: TrailOptions): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io = { stdout: (t: string) => void (stdout += t), stderr: (t: string) => void (stderr += t), isTTY: false };
  const code = await auditTrailCommand(opts, io, { JOBLEDGER_NATS_URL: nats.url, JOBLEDGER_STREAM: STREAM, JOBLEDGER_HOME: dir });
  return { code, stdout, stderr };
}

const jsonTrail = async (opts: TrailOptions) => {
  const r = await trail({ ...opts, out: 'json' });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { seq: number; time: string; subject: string; event?: LedgerEvent; invalid?: boolean; error?: string });
};

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'jobledger-audit-trail-'));
  nats = await startNatsServer({ storeDir: path.join(dir, 'nats') });
  ledger = await openLedger({ natsUrl: nats.url, stream: STREAM, name: 'audit-trail-test' });

  const start: LedgerEvent = {
    type: 'agent.started',
    tag: 'minion_start',
    data: {
      id: 'web1',
      cmd: '_minion_event',
      pretag: null,
      tag: 'minion_start',
      data: minionStartedText('web1', new Date()),
      _stamp: saltStamp(),
    },
  };
  await append(subjects.agentStart('web1'), encodeEvent(start), msgIds.agentStart('web1', 'boot-1')); // 1
  await append(subjects.jobNew(J), encodeEvent(published(J, 'alice', ['web1', 'web2'])), msgIds.jobNew(J)); // 2
  await append(subjects.jobRet(J, 'web1'), encodeEvent(returned(J, 'web1', 'alice', 0))); // 3
  await append(subjects.jobRet(J, 'web2'), encodeEvent(returned(J, 'web2', 'alice', 1))); // 4
  await new Promise((r) => setTimeout(r, 30));
  between = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 30));
  await append(subjects.jobNew(K), encodeEvent(published(K, 'bob', ['web2'])), msgIds.jobNew(K)); // 5
  const proc: LedgerEvent = {
    type: 'proc.signalled',
    tag: procTag(K, 'web2', 'signalled'),
    data: { jid: K, id: 'web2', fun: 'cmd.run', pid: 77, signal: 15, _stamp: saltStamp() },
  };
  await append(subjects.jobProc(K, 'web2'), encodeEvent(proc)); // 6
  badSeq = await append(subjects.jobRet(K, 'web2'), '{"type":"job.returned","tag":"x","data":{"jid":"nope"}}'); // 7
  const runData = { fun: 'runner.jobs.active', jid: R, user: 'alice', fun_args: [], _stamp: saltStamp() };
  await append(subjects.runNew(R), encodeEvent({ type: 'runner.published', tag: runnerPublishedTag(R), data: runData })); // 8
  await append(
    subjects.runRet(R),
    encodeEvent({ type: 'runner.returned', tag: runnerReturnedTag(R), data: { ...runData, return: {}, success: true } }),
  ); // 9
  // A return in version 0 of job.returned (no success): read through the upcaster.
  const v0 = {
    v: 0,
    type: 'job.returned',
    tag: jobReturnedTag(K, 'web1'),
    data: { ...returned(K, 'web1', 'bob', 2).data, success: undefined },
  };
  await append(subjects.jobRet(K, 'web1'), JSON.stringify(v0)); // 10
}, 60_000);

afterAll(async () => {
  await ledger?.nc.close().catch(() => undefined);
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('jobledger audit trail', () => {
  it('reads every message in stream order, a broken one with its error, an old one upcast', async () => {
    const all = await jsonTrail({});
    expect(all.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(all.map((l) => l.event?.type ?? 'INVALID')).toEqual([
      'agent.started',
      'job.published',
      'job.returned',
      'job.returned',
      'job.published',
      'proc.signalled',
      'INVALID',
      'runner.published',
      'runner.returned',
      'job.returned',
    ]);
    const bad = all[badSeq - 1]!;
    expect(bad).toMatchObject({ invalid: true, subject: subjects.jobRet(K, 'web2'), error: expect.stringMatching(/^invalid event:/) });
    expect(all[9]!.event!.data).toMatchObject({ retcode: 2, success: false });
    for (const l of all) expect(l.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it('prints an aligned table', async () => {
    const r = await trail({});
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(11);
    expect(lines[0]).toMatch(/^SEQ +TIME +TYPE +JID +AGENT +USER +SUMMARY$/);
    const typeAt = lines[0]!.indexOf('TYPE');
    expect(lines.slice(1).map((l) => l.slice(typeAt).split(' ')[0])).toContain('INVALID');
    expect(lines[4]).toMatch(/job\.returned +\d{20} +web2 +alice +cmd\.run FAILED retcode 1$/);
    expect(lines[6]).toContain('cmd.run pid 77 signal 15 (SIGTERM)');
    expect(r.stdout).not.toContain('uid=0(root)');
  });

  it('--jid reads the job or the runner job only', async () => {
    expect((await jsonTrail({ jid: J })).map((l) => l.seq)).toEqual([2, 3, 4]);
    expect((await jsonTrail({ jid: K })).map((l) => l.seq)).toEqual([5, 6, 7, 10]);
    expect((await jsonTrail({ jid: R })).map((l) => l.seq)).toEqual([8, 9]);
    expect(await jsonTrail({ jid: genJid() })).toEqual([]);
  });

  it('--agent and --user', async () => {
    expect((await jsonTrail({ agent: 'web1' })).map((l) => l.seq)).toEqual([1, 2, 3, 10]);
    expect((await jsonTrail({ agent: 'web2' })).map((l) => l.seq)).toEqual([2, 4, 5, 6, 7]);
    expect((await jsonTrail({ user: 'alice' })).map((l) => l.seq)).toEqual([2, 3, 4, 8, 9]);
    expect((await jsonTrail({ user: 'bob' })).map((l) => l.seq)).toEqual([5, 6, 7, 10]);
  });

  it('--since starts the consumer at a time (ISO or jid), --until stops it', async () => {
    const { timeArg } = await import('../packages/cli/src/commands/audit-trail.js');
    expect((await jsonTrail({ sinceMicros: timeArg(between) })).map((l) => l.seq)).toEqual([5, 6, 7, 8, 9, 10]);
    expect((await jsonTrail({ untilMicros: timeArg(between) })).map((l) => l.seq)).toEqual([1, 2, 3, 4]);
    expect((await jsonTrail({ sinceMicros: timeArg(K), jid: K })).map((l) => l.seq)).toEqual([5, 6, 7, 10]);
    expect((await jsonTrail({ sinceMicros: timeArg(between), agent: 'web1' })).map((l) => l.seq)).toEqual([10]);
    expect(await jsonTrail({ sinceMicros: timeArg('2999-01-01') })).toEqual([]);
  });

  it('stops at the last sequence as of its start', async () => {
    const before = await jsonTrail({});
    const late = genJid();
    await append(subjects.jobNew(late), encodeEvent(published(late, 'carol', ['web1'])), msgIds.jobNew(late));
    const after = await jsonTrail({});
    expect(after.length).toBe(before.length + 1);
    // messages stored after the bound are never read, though more are pending
    const bounded: number[] = [];
    for await (const m of readSubject(ledger.js, STREAM, 'ledger.>', 5, 3)) bounded.push(m.seq);
    expect(bounded).toEqual([3, 4, 5]);
    expect(await firstSeqAt(ledger.js, STREAM, 'ledger.>', between)).toBe(5);
    expect(await firstSeqAt(ledger.js, STREAM, `ledger.job.${J}.>`, between)).toBeUndefined();
    // filters whose last match is far behind the end still finish
    expect((await jsonTrail({ jid: J })).map((l) => l.seq)).toEqual([2, 3, 4]);
  });

  it('runs as `jobledger audit trail` (the CLI itself)', async () => {
    const home = new CliHome('jobledger-audit-trail-e2e-');
    try {
      const env = { JOBLEDGER_NATS_URL: nats.url, JOBLEDGER_STREAM: STREAM };
      const json = await home.run(['audit', 'trail', '--jid', J, '--out', 'json'], { env });
      expect(json.stderr).toBe('');
      expect(json.code).toBe(0);
      expect(
        json.stdout
          .trimEnd()
          .split('\n')
          .map((l) => (JSON.parse(l) as { seq: number }).seq),
      ).toEqual([2, 3, 4]);
      const table = await home.run(['audit', 'trail', '--user', 'bob', '--since', K], { env });
      expect(table.code).toBe(0);
      expect(table.stdout.trimEnd().split('\n')).toHaveLength(5);
      expect(table.stdout).toContain('INVALID');
      const bad = await home.run(['audit', 'trail', '--since', 'not a time'], { env });
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toMatch(/--since.*Unknown string format: not a time/);
    } finally {
      home.remove();
    }
  });

  it('a stream that is not there is one line, exit 2', async () => {
    let stderr = '';
    const io = { stdout: () => undefined, stderr: (t: string) => void (stderr += t), isTTY: false };
    const code = await auditTrailCommand({}, io, { JOBLEDGER_NATS_URL: nats.url, JOBLEDGER_STREAM: 'NOPE', JOBLEDGER_HOME: dir });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^cannot read stream NOPE at nats:\/\/.*: .*\n$/);
  });
});
