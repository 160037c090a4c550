// Integration-test support for the agent (not built into dist: see tsconfig.json `exclude`).
// A nats-server of the test file's own, the built agent run as a real child process, and a probe
// that publishes jobs the way the dispatcher does and records every ledger event.

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ConsumerMessages } from '@nats-io/jetstream';
import {
  decodeEvent,
  encodeEvent,
  genJid,
  jobPublishedTag,
  msgIds,
  saltStamp,
  subjects,
  type LedgerEvent,
  type TgtType,
} from '@jobledger/core';
import { openLedger, type Ledger } from '@jobledger/runtime';
import { startNatsServer, type NatsServerHandle } from '../../../../packages/cli/src/embedded/nats-server.js';

export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const AGENT_MAIN = path.join(REPO_ROOT, 'services/agent/dist/main.js');

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 15_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Whether `pid` runs (a zombie waiting for its parent to reap it does not). */
export function processRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * `npx tsc -b services/agent`, once at a time across the run's test files (vitest runs files in
 * parallel workers and both would write the same outputs).
 */
export async function buildAgent(): Promise<void> {
  const lock = path.join(os.tmpdir(), 'jobledger-agent-build.lock');
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      try {
        if (Date.now() - statSync(lock).mtimeMs > 180_000) rmdirSync(lock);
      } catch {
        /* released meanwhile */
      }
      if (Date.now() > deadline) throw new Error(`could not take the build lock ${lock}`);
      await sleep(200);
    }
  }
  try {
    await promisify(execFile)('npx', ['tsc', '-b', 'services/agent'], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`tsc -b services/agent failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`);
  } finally {
    rmdirSync(lock);
  }
}

/** A temporary directory holding the file's nats-server store and the agents' homes. */
export class Workspace {
  private constructor(
    readonly root: string,
    readonly nats: NatsServerHandle,
  ) {}

  static async create(prefix: string): Promise<Workspace> {
    const root = await mkdtemp(path.join(os.tmpdir(), `jobledger-${prefix}-`));
    const nats = await startNatsServer({ storeDir: path.join(root, 'nats') });
    return new Workspace(root, nats);
  }

  async dispose(): Promise<void> {
    await this.nats.stop();
    await rm(this.root, { recursive: true, force: true });
  }
}

export interface AgentProcessOptions {
  natsUrl: string;
  stream: string;
  home: string;
  ids: readonly string[];
  env?: Record<string, string>;
}

/** The built agent (`node services/agent/dist/main.js`) as a child process. */
export class AgentProcess {
  private exitInfo?: { code: number | null; signal: NodeJS.Signals | null };
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = '';

  private constructor(
    readonly child: ChildProcess,
    readonly opts: AgentProcessOptions,
    readonly logFile: string,
    readonly readyFile: string,
  ) {
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      }),
    );
    child.stderr?.on('data', (b: Buffer) => (this.stderr += b.toString()));
  }

  get pid(): number {
    return this.child.pid!;
  }

  static env(opts: AgentProcessOptions, logFile: string, readyFile: string): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      JOBLEDGER_NATS_URL: opts.natsUrl,
      JOBLEDGER_STREAM: opts.stream,
      JOBLEDGER_HOME: opts.home,
      JOBLEDGER_AGENT_IDS: opts.ids.join(','),
      JOBLEDGER_LOG_FILE: logFile,
      JOBLEDGER_LOG_LEVEL: 'debug',
      JOBLEDGER_READY_FILE: readyFile,
      ...opts.env,
    };
  }

  /** Starts the agent and waits for its ready file (fails with its log if it exits first). */
  static async start(opts: AgentProcessOptions): Promise<AgentProcess> {
    const n = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
    const logFile = path.join(opts.home, `agent-${n}.log`);
    const readyFile = path.join(opts.home, `agent-${n}.ready`);
    const child = spawn(process.execPath, [AGENT_MAIN], {
      env: AgentProcess.env(opts, logFile, readyFile),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const agent = new AgentProcess(child, opts, logFile, readyFile);
    await eventually(
      async () => {
        if (agent.exitInfo)
          throw new Error(`agent exited during start-up (${JSON.stringify(agent.exitInfo)}):\n${agent.stderr}\n${await agent.log()}`);
        return existsSync(readyFile) && readFileSync(readyFile, 'utf8').trim() === String(child.pid);
      },
      30_000,
      'the agent ready file',
    );
    return agent;
  }

  async log(): Promise<string> {
    return readFile(this.logFile, 'utf8').catch(() => '');
  }

  /** SIGTERM (graceful stop) and wait for the exit. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.exitInfo) this.child.kill('SIGTERM');
    return this.exited;
  }

  /** SIGKILL: the agent dies on the spot. */
  async kill9(): Promise<void> {
    if (!this.exitInfo) this.child.kill('SIGKILL');
    await this.exited;
  }
}

export interface RecordedEvent {
  seq: number;
  subject: string;
  event: LedgerEvent;
}

/** Publishes jobs as the dispatcher does and records every event of the stream, in order. */
export class Probe {
  readonly events: RecordedEvent[] = [];
  private constructor(
    readonly ledger: Ledger,
    private readonly messages: ConsumerMessages,
  ) {}

  static async open(natsUrl: string, stream: string): Promise<Probe> {
    const ledger = await openLedger({ natsUrl, stream, name: 'agent-test-probe' });
    const consumer = await ledger.js.consumers.get(stream, { filter_subjects: 'ledger.>' });
    const messages = await consumer.consume();
    const probe = new Probe(ledger, messages);
    void (async () => {
      for await (const m of messages) {
        try {
          probe.events.push({ seq: m.seq, subject: m.subject, event: decodeEvent(m.data) });
        } catch {
          /* poison messages published by the tests themselves */
        }
      }
    })();
    return probe;
  }

  async close(): Promise<void> {
    await this.messages.close();
    await this.ledger.nc.close();
  }

  /** Appends `job.published` (what the dispatcher writes) and returns its jid and sequence. */
  async publishJob(job: {
    fun: string;
    arg?: unknown[];
    tgt: string | string[];
    tgt_type?: TgtType;
    minions?: string[];
    /** `--return` returners. */
    ret?: string;
  }): Promise<{ jid: string; seq: number }> {
    const jid = genJid();
    const event: LedgerEvent = {
      type: 'job.published',
      tag: jobPublishedTag(jid),
      data: {
        jid,
        tgt: job.tgt,
        tgt_type: job.tgt_type ?? 'glob',
        user: 'root',
        fun: job.fun,
        arg: job.arg ?? [],
        minions: job.minions ?? [],
        missing: [],
        ret: job.ret ?? '',
        _stamp: saltStamp(),
      },
    };
    const ack = await this.ledger.js.publish(subjects.jobNew(jid), encodeEvent(event), {
      msgID: msgIds.jobNew(jid),
      expect: { lastSubjectSequence: 0 },
    });
    return { jid, seq: ack.seq };
  }

  /** Raw bytes on a job publication subject (for poison-message tests). */
  async publishRaw(subject: string, body: string): Promise<number> {
    return (await this.ledger.js.publish(subject, new TextEncoder().encode(body))).seq;
  }

  of<T extends LedgerEvent['type']>(type: T, jid?: string): Array<RecordedEvent & { event: Extract<LedgerEvent, { type: T }> }> {
    return this.events.filter(
      (e): e is RecordedEvent & { event: Extract<LedgerEvent, { type: T }> } =>
        e.event.type === type && (jid === undefined || (e.event.data as { jid?: string }).jid === jid),
    );
  }

  returns(jid: string) {
    return this.of('job.returned', jid).map((e) => e.event.data);
  }

  procs(jid: string, what: 'started' | 'ended' | 'signalled') {
    return this.of(`proc.${what}`, jid).map((e) => e.event.data);
  }

  /** Waits until `jid` has `n` returns (and, when `procEnded`, as many proc.ended). */
  async waitReturns(jid: string, n: number, timeoutMs = 15_000, procEnded = true) {
    await eventually(
      () => this.returns(jid).length >= n && (!procEnded || this.procs(jid, 'ended').length >= n),
      timeoutMs,
      `${n} returns of ${jid}`,
    );
    return this.returns(jid);
  }
}
