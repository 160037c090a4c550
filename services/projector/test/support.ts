// Fixtures for the projector's integration tests: a nats-server of the test's own (the projector
// consumes the whole `ledger.>` space, so no other file may publish there), a fresh database
// on the run's shared PostgreSQL, events built with core's schemas.

import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import {
  encodeEvent,
  genJid,
  jobPublishedTag,
  jobReturnedTag,
  minionStartedText,
  msgIds,
  procTag,
  saltStamp,
  subjects,
  type AgentStarted,
  type JobPublished,
  type JobReturned,
  type LedgerEvent,
  type ProcEnded,
  type ProcSignalled,
  type ProcStarted,
} from '@jobledger/core';
import { openLedger, type Ledger, type Logger } from '@jobledger/runtime';
import { startNatsServer, type NatsServerHandle } from '../../../packages/cli/src/embedded/nats-server.js';
import { freshDatabase } from '../../../test/support/servers.js';
import type { ProjectorConfig } from '../src/config.js';
import type { RawMessage } from '../src/projections.js';

export const MASTER_ID = 'master_master';

export interface World {
  nats: NatsServerHandle;
  ledger: Ledger;
  databaseUrl: string;
  db: pg.Pool;
  dir: string;
  config(overrides?: Partial<ProjectorConfig>): ProjectorConfig;
  close(): Promise<void>;
}

/** A nats-server and a database of the test's own, and a connection to each. */
export async function world(prefix = 'projector'): Promise<World> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `jobledger-${prefix}-`));
  await chmod(dir, 0o755);
  const nats = await startNatsServer({ storeDir: path.join(dir, 'nats') });
  const databaseUrl = await freshDatabase(prefix);
  const ledger = await openLedger({ natsUrl: nats.url, stream: 'LEDGER', name: 'projector-test' });
  const db = new pg.Pool({ connectionString: databaseUrl, max: 3 });
  return {
    nats,
    ledger,
    databaseUrl,
    db,
    dir,
    config: (overrides = {}) => ({
      natsUrl: nats.url,
      stream: 'LEDGER',
      home: dir,
      logLevel: 'silent',
      databaseUrl,
      masterId: MASTER_ID,
      batch: 500,
      nice: 0,
      consumer: 'projector',
      ...overrides,
    }),
    async close() {
      await db.end().catch(() => undefined);
      await ledger.nc.close().catch(() => undefined);
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function quietLogger(): Logger {
  return pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
}

/** A fresh jid (20 digits), strictly increasing within the run. */
export const newJid = (): string => genJid();

export const stamp = () => saltStamp();

export function published(jid: string, over: Partial<JobPublished['data']> = {}): JobPublished {
  return {
    type: 'job.published',
    tag: jobPublishedTag(jid),
    data: {
      jid,
      tgt: '*',
      tgt_type: 'glob',
      user: 'root',
      fun: 'test.ping',
      arg: [],
      minions: [],
      missing: [],
      ret: '',
      _stamp: stamp(),
      ...over,
    },
  };
}

export function returned(jid: string, id: string, ret: unknown, over: Partial<JobReturned['data']> = {}): JobReturned {
  return {
    type: 'job.returned',
    tag: jobReturnedTag(jid, id),
    data: {
      cmd: '_return',
      id,
      jid,
      fun: 'test.ping',
      fun_args: [],
      return: ret,
      retcode: 0,
      success: true,
      user: 'root',
      _stamp: stamp(),
      ...over,
    },
  };
}

export function procStarted(jid: string, id: string, pid: number, fun = 'test.sleep'): ProcStarted {
  return { type: 'proc.started', tag: procTag(jid, id, 'started'), data: { jid, id, fun, pid, _stamp: stamp() } };
}
export function procSignalled(jid: string, id: string, pid: number, signal: number, fun = 'test.sleep'): ProcSignalled {
  return { type: 'proc.signalled', tag: procTag(jid, id, 'signalled'), data: { jid, id, fun, pid, signal, _stamp: stamp() } };
}
export function procEnded(jid: string, id: string, pid: number, over: Partial<ProcEnded['data']> = {}, fun = 'test.sleep'): ProcEnded {
  return { type: 'proc.ended', tag: procTag(jid, id, 'ended'), data: { jid, id, fun, pid, outcome: 'returned', _stamp: stamp(), ...over } };
}

export function agentStarted(id: string, over: Partial<AgentStarted['data']> = {}): AgentStarted {
  return {
    type: 'agent.started',
    tag: 'minion_start',
    data: {
      id,
      cmd: '_minion_event',
      pretag: null,
      tag: 'minion_start',
      data: minionStartedText(id, new Date()),
      _stamp: stamp(),
      ...over,
    },
  };
}

/** Subject and Nats-Msg-Id of an event, as the services publish it. */
let boots = 0;
export function addressOf(ev: LedgerEvent): { subject: string; msgID: string } {
  switch (ev.type) {
    case 'job.published':
      return { subject: subjects.jobNew(ev.data.jid), msgID: msgIds.jobNew(ev.data.jid) };
    case 'job.returned':
      return { subject: subjects.jobRet(ev.data.jid, ev.data.id), msgID: msgIds.jobRet(ev.data.jid, ev.data.id) };
    case 'proc.started':
    case 'proc.signalled':
    case 'proc.ended':
      return { subject: subjects.jobProc(ev.data.jid, ev.data.id), msgID: msgIds.proc(ev.data.jid, ev.data.id, ev.type.slice(5)) };
    case 'agent.started':
      return { subject: subjects.agentStart(ev.data.id), msgID: msgIds.agentStart(ev.data.id, `boot-${++boots}`) };
    case 'runner.published':
      return { subject: subjects.runNew(ev.data.jid), msgID: msgIds.runNew(ev.data.jid) };
    case 'runner.returned':
      return { subject: subjects.runRet(ev.data.jid), msgID: msgIds.runRet(ev.data.jid) };
    case 'returner.failed':
      return {
        subject: subjects.jobReturner(ev.data.jid, ev.data.id),
        msgID: msgIds.returnerFailed(ev.data.jid, ev.data.id, ev.data.returner),
      };
    case 'publish.denied':
      return { subject: subjects.publishDenied, msgID: msgIds.publishDenied(`${ev.data._stamp}:${++boots}`) };
    case 'key.accepted':
    case 'key.rejected':
    case 'key.deleted':
      return { subject: subjects.key(ev.data.id), msgID: msgIds.key(ev.data.id, ev.data.act, ev.data.pub, ++boots) };
  }
}

/** Appends events in order; returns their stream sequences. */
export async function append(ledger: Ledger, ...events: LedgerEvent[]): Promise<number[]> {
  const seqs: number[] = [];
  for (const ev of events) {
    const { subject, msgID } = addressOf(ev);
    const ack = await ledger.js.publish(subject, encodeEvent(ev), { msgID });
    seqs.push(ack.seq);
  }
  return seqs;
}

/** Appends raw bytes on any subject (poison messages); returns the stream sequence. */
export async function appendRaw(ledger: Ledger, subject: string, body: string | Uint8Array): Promise<number> {
  const ack = await ledger.js.publish(subject, body);
  return ack.seq;
}

export async function lastSeq(ledger: Ledger): Promise<number> {
  return (await ledger.jsm.streams.info(ledger.stream)).state.last_seq;
}

/** Stream messages by sequence, as the projector receives them. */
export async function readStream(ledger: Ledger, from: number, to: number): Promise<RawMessage[]> {
  const out: RawMessage[] = [];
  for (let seq = from; seq <= to; seq++) {
    const m = await ledger.jsm.streams.getMessage(ledger.stream, { seq });
    if (m) out.push({ seq: m.seq, subject: m.subject, data: m.data, time: m.time });
  }
  return out;
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function rows<T = Record<string, unknown>>(db: pg.Pool, sql: string, values: unknown[] = []): Promise<T[]> {
  return (await db.query(sql, values)).rows as T[];
}

/** Every read model, ordered, for comparing whole states (alter_time/received_at/updated_at left out). */
export async function snapshot(db: pg.Pool): Promise<Record<string, unknown[]>> {
  return {
    jids: await rows(db, 'SELECT * FROM jids ORDER BY jid'),
    salt_returns: await rows(db, 'SELECT fun, jid, "return", id, success, full_ret FROM salt_returns ORDER BY jid, id, full_ret::text'),
    salt_events: await rows(db, 'SELECT id, tag, data, master_id FROM salt_events ORDER BY id'),
    jobs: await rows(db, 'SELECT * FROM jobs ORDER BY jid'),
    procs: await rows(db, 'SELECT * FROM procs ORDER BY jid, id'),
    agents: await rows(db, 'SELECT * FROM agents ORDER BY id'),
    dead_letters: await rows(db, 'SELECT seq, subject, raw, error FROM dead_letters ORDER BY seq'),
    checkpoint: await rows(db, 'SELECT name, last_seq FROM projector_checkpoint ORDER BY name'),
  };
}
