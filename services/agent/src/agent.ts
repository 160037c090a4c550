import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { JetStreamApiCodes, JetStreamApiError, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import {
  agentConsumerConfig,
  decodeEvent,
  encodeAgentId,
  encodeEvent,
  minionStartedText,
  msgIds,
  procTag,
  jobReturnedTag,
  subjects,
  matchTarget,
  UnsupportedTargetError,
  type AgentPresence,
  type JobPublishedData,
  type JobReturned,
  type JobReturnedData,
  type LedgerEvent,
  type ProcEndedData,
} from '@jobledger/core';
import {
  credsEventSigner,
  openAgentsBucket,
  openProgressBucket,
  SHORT_PULLS,
  openLedger,
  stampNow,
  storeReturn,
  type Ledger,
  type Logger,
} from '@jobledger/runtime';
import { agentCachedir, type AgentConfig } from './config.js';
import { execute, type Outcome } from './execute.js';
import { hostGrains } from './grains.js';
import { forEachLimit, Limiter } from './limiter.js';
import { ProcJobs, type LocalJob } from './job-control.js';
import { FunctionTable, loadPluginModules, ProcessSignalledError, type ExecContext, type Grains } from './modules/index.js';
import { fileName, ProcDir, procFileOf, reapOrphan, type ProcEntry, type ProcFile } from './proc-files.js';
import { terminates } from './processes.js';
import { Publisher } from './publisher.js';
import { ReturnerCalls, type ReturnerSource } from './returner-calls.js';
import { agentReturnerSources } from './returner-sources.js';
import { AGENT_VERSION } from './version.js';

/** One agent id hosted by the process. */
interface Hosted {
  id: string;
  key: string;
  grains: Grains;
  procDir: ProcDir;
  /** Its running jobs, for `saltutil.*`. */
  jobs: ProcJobs;
  /** Last job publication sequence this id has handled (run, skipped, or not targeted). */
  lastSeq: number;
  /** `lastSeq` moved since it was last written to the progress bucket. */
  dirty: boolean;
}

/** A job of one id, from before its proc file is written until its end is recorded. */
interface Running {
  h: Hosted;
  /** The sequence of its publication: the id's progress stays below it while it has no proc file. */
  seq: number;
  /** Its proc file content; `pid` becomes the child's once a shell function has spawned it. */
  proc: ProcFile;
  /** Its proc file is on disk (or being written). */
  fileWritten: boolean;
  /** Writes the proc file of a job inside the agent that runs past `procFileAfterMs`. */
  fileTimer?: NodeJS.Timeout;
  abort: AbortController;
  /** Settles once the job's end is recorded (set when its proc.started is stored). */
  done?: Promise<void>;
  /** Appends of its proc.signalled events; proc.ended waits for them, so it always comes after. */
  signals: Array<Promise<void>>;
  /** Its end is being recorded. */
  finishing: boolean;
}

const jobKey = (id: string, jid: string) => `${id}\n${jid}`;

export interface AgentHandle {
  readonly ids: readonly string[];
  readonly group: string;
  /** Settles when the agent has stopped: resolves after `stop()`, rejects if consuming failed. */
  readonly closed: Promise<void>;
  /** Stops consuming, lets running jobs finish (up to the grace period), flushes lastSeq, closes. */
  stop(): Promise<void>;
}

/** Parallel requests at start-up and in catch-up checks. */
const IO_PARALLEL = 64;
/**
 * How often changed `lastSeq`s are written to the progress bucket. A restart after a crash reads
 * again what came after: jobs an id already started are recognised and not run twice.
 */
const FLUSH_EVERY_MS = 5_000;
/** While a message's jobs wait for a slot, its ack deadline is pushed back this often. */
const WORKING_EVERY_MS = 10_000;
/** A message whose jobs could not all be started is redelivered after this. */
const NAK_DELAY_MS = 5_000;
/** After the grace period, cancelled jobs get this long to record their end. */
const CANCEL_WAIT_MS = 5_000;
/** The signal a job still running at the end of the stop grace period is cancelled with. */
const SIGTERM = 15;
/** Room for headers and subject next to a message body. */
const HEADER_ROOM = 4 * 1024;
/** `--return` returner calls in flight at once, over all ids and jobs. */
const RETURNER_CONCURRENCY = 16;
/** On stop, how long the returner calls still running may take to finish. */
const RETURNERS_STOP_WAIT_MS = 30_000;

const isConsumerNotFound = (err: unknown) => err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound;

/**
 * Where an id stopped: its progress entry, or (an id last run by an agent that kept it in its
 * presence value) the presence's `lastSeq`; undefined for an id never seen.
 */
async function lastHandled(
  h: Hosted,
  presence: KV,
  progress: KV,
  log: Logger,
): Promise<{ seq: number; from: 'progress' | 'presence' } | undefined> {
  const entry = await progress.get(h.key);
  if (entry && entry.length > 0) {
    const seq = Number(entry.string());
    if (Number.isSafeInteger(seq) && seq >= 0) return { seq, from: 'progress' };
    log.warn({ agent: h.id }, 'unreadable progress entry, reading the presence value instead');
  }
  const old = await presence.get(h.key);
  const p = old && old.length > 0 ? parsePresence(old.string(), log.child({ agent: h.id })) : undefined;
  return p?.lastSeq === undefined ? undefined : { seq: p.lastSeq, from: 'presence' };
}

function parsePresence(raw: string, log: Logger): AgentPresence | undefined {
  try {
    const p = JSON.parse(raw) as AgentPresence;
    return Number.isInteger(p.lastSeq) ? p : undefined;
  } catch (err) {
    log.warn({ err }, 'unreadable presence entry, treating the id as new');
    return undefined;
  }
}

/** What an agent offers beyond its configuration: its functions and its returners. */
export interface AgentExtensions {
  functions: FunctionTable;
  /** The returners of one hosted id. */
  returners(id: string): ReturnerSource;
  /** Closes every returner opened. */
  closeReturners(): Promise<void>;
}

/** The functions (built-ins and `<extension_modules>/modules/` plugins) and the returners of the agent. */
export async function loadExtensions(config: AgentConfig, log: Logger): Promise<AgentExtensions> {
  const plugins = await loadPluginModules(path.join(config.extensionModules, 'modules'), log);
  const sources = await agentReturnerSources(config, log);
  return { functions: new FunctionTable(plugins), returners: (id) => sources.get(id), closeReturners: () => sources.closeAll() };
}

export async function startAgent(config: AgentConfig, logger: Logger): Promise<AgentHandle> {
  const log = logger.child({ group: config.group });
  const extensions = await loadExtensions(config, log);
  const ledger = await openLedger({
    natsUrl: config.natsUrl,
    stream: config.stream,
    name: `jobledger-agent:${config.group}`,
    auth: config.natsAuth,
  });
  try {
    return await Agent.start(config, ledger, log, extensions);
  } catch (err) {
    await ledger.nc.close().catch(() => undefined);
    throw err;
  }
}

class Agent implements AgentHandle {
  readonly ids: readonly string[];
  readonly group: string;
  readonly closed: Promise<void>;

  private readonly hosted: Hosted[];
  private readonly publisher: Publisher;
  private readonly slots: Limiter;
  /** The `--return` returners of finished jobs, called off the jobs' path. */
  private readonly returnerCalls: ReturnerCalls;
  private readonly running = new Map<string, Running>();
  /** Aborted by stop(): no job starts after it. */
  private readonly stopping = new AbortController();
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;
  private flushTimer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private stopped?: Promise<void>;
  private resolveClosed!: () => void;
  private rejectClosed!: (err: unknown) => void;

  private constructor(
    private readonly config: AgentConfig,
    private readonly ledger: Ledger,
    private readonly kv: KV,
    private readonly progress: KV,
    private readonly log: Logger,
    hosted: Hosted[],
    /** The stream's last sequence when this process started: anything up to it is catch-up. */
    private readonly catchUpUntil: number,
    private readonly startedAt: Date,
    private readonly extensions: AgentExtensions,
  ) {
    this.ids = config.ids;
    this.group = config.group;
    this.hosted = hosted;
    this.publisher = new Publisher(ledger.js, log, {
      window: 1024,
      retryForMs: 60_000,
      signer: config.natsAuth?.credsFile ? credsEventSigner(config.natsAuth.credsFile) : undefined,
      storedOn: async (subject, seq) => {
        try {
          const last = await ledger.jsm.direct.getMessage(config.stream, { last_by_subj: subject });
          return last !== null && last.seq === seq;
        } catch (err) {
          log.warn({ err, subject }, 'cannot check a duplicate publish; taking it as stored');
          return true;
        }
      },
    });
    this.slots = new Limiter(config.maxInflight);
    this.returnerCalls = new ReturnerCalls({
      source: (id) => extensions.returners(id),
      append: (subject, event, msgID) => this.append(subject, event, msgID),
      log,
      concurrency: RETURNER_CONCURRENCY,
    });
    this.closed = new Promise((resolve, reject) => {
      this.resolveClosed = resolve;
      this.rejectClosed = reject;
    });
    // A failed consumer is reported through `closed`; nobody may be listening yet.
    this.closed.catch(() => undefined);
  }

  static async start(config: AgentConfig, ledger: Ledger, log: Logger, extensions: AgentExtensions): Promise<Agent> {
    const t0 = performance.now();
    const kv = await openAgentsBucket(ledger);
    const progress = await openProgressBucket(ledger);
    const info = await ledger.jsm.streams.info(config.stream);
    const streamLast = info.state.last_seq;
    const startedAt = new Date();
    const host = hostGrains();

    // The job control hooks are called only by jobs the agent runs: once it exists.
    const self: { agent?: Agent } = {};
    const hosted: Hosted[] = config.ids.map((id) => {
      const procDir = new ProcDir(`${agentCachedir(config.cachedirRoot, id)}/proc`);
      const h: Hosted = {
        id,
        key: encodeAgentId(id),
        grains: { ...host, id },
        procDir,
        jobs: new ProcJobs(procDir, id, {
          local: (jid) => self.agent!.localJob(id, jid),
          locals: () => self.agent!.localJobs(id),
          lost: (entry) => self.agent!.recordInterrupted(h, entry, false),
          signalled: (proc, signal) => self.agent!.recordSignal(h, proc, signal),
        }),
        lastSeq: streamLast,
        dirty: false,
      };
      return h;
    });
    let known = 0;
    await forEachLimit(hosted, IO_PARALLEL, async (h) => {
      await h.procDir.init();
      const last = await lastHandled(h, kv, progress, log);
      if (last !== undefined) {
        // Never ahead of the stream (a recreated stream starts again at 1).
        h.lastSeq = Math.min(last.seq, streamLast);
        known++;
      }
      // A new id (or one known from its presence only) gets its progress entry at once: what is
      // published from now on is what it catches up on after a stop.
      if (last?.from !== 'progress') h.dirty = true;
    });

    const agent = new Agent(config, ledger, kv, progress, log, hosted, streamLast, startedAt, extensions);
    self.agent = agent;
    // A new id's progress entry before anything else (a start that cannot write it fails: the id
    // would otherwise miss what is published while it is down), then presence, so the dispatcher
    // counts these ids as soon as we report ready.
    await forEachLimit(
      hosted.filter((h) => h.dirty),
      IO_PARALLEL,
      async (h) => {
        await agent.putProgress(h);
        h.dirty = false;
      },
    );
    await forEachLimit(hosted, IO_PARALLEL, (h) => agent.putPresence(h));
    await agent.recoverProcFiles();
    await agent.announce();
    await agent.openConsumer();
    agent.flushTimer = setInterval(() => void agent.flushLastSeq(), FLUSH_EVERY_MS);
    agent.flushTimer.unref();
    agent.loop = agent.consumeLoop();
    log.info(
      { ids: hosted.length, known, streamLast, startSeq: agent.startSeq(), ms: Math.round(performance.now() - t0) },
      'agent started',
    );
    return agent;
  }

  // ── presence ────────────────────────────────────────────────────────────────────────────

  private async putPresence(h: Hosted): Promise<void> {
    const presence: AgentPresence = {
      id: h.id,
      group: this.group,
      lastSeq: h.lastSeq,
      startedAt: this.startedAt.toISOString(),
      grains: h.grains,
    };
    await this.kv.put(h.key, JSON.stringify(presence));
  }

  /**
   * Writes the id's progress to the progress bucket; `dirty` is cleared by the caller. It stays
   * below any job of the id that is known only in memory (running inside the agent without its
   * proc file yet): after a crash, the next process reads that job again and records it as lost.
   */
  private async putProgress(h: Hosted, unfiled?: ReadonlyMap<Hosted, number>): Promise<void> {
    const first = unfiled?.get(h);
    await this.progress.put(h.key, String(first === undefined ? h.lastSeq : Math.min(h.lastSeq, first - 1)));
  }

  /** Per id, the lowest publication sequence of its running jobs that have no proc file. */
  private unfiledJobs(): Map<Hosted, number> {
    const first = new Map<Hosted, number>();
    for (const r of this.running.values()) {
      if (r.fileWritten) continue;
      const seen = first.get(r.h);
      if (seen === undefined || r.seq < seen) first.set(r.h, r.seq);
    }
    return first;
  }

  private advance(h: Hosted, seq: number): void {
    if (seq > h.lastSeq) {
      h.lastSeq = seq;
      h.dirty = true;
    }
  }

  /** Writes every changed `lastSeq` (one put per changed id, all in flight together). */
  private flushLastSeq(): Promise<void> {
    this.flushing ??= (async () => {
      try {
        const dirty = this.hosted.filter((h) => h.dirty);
        for (const h of dirty) h.dirty = false;
        const unfiled = this.unfiledJobs();
        // An id held back by such a job is written again once the job has its file or its end.
        for (const h of unfiled.keys()) h.dirty = true;
        await forEachLimit(dirty, IO_PARALLEL, async (h) => {
          try {
            await this.putProgress(h, unfiled);
          } catch (err) {
            h.dirty = true;
            this.log.warn({ err, agent: h.id }, 'could not write lastSeq');
          }
        });
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  // ── start-up ────────────────────────────────────────────────────────────────────────────

  /** Jobs that were running when a previous process died: recorded as lost, never run again. */
  private async recoverProcFiles(): Promise<void> {
    await forEachLimit(this.hosted, IO_PARALLEL, async (h) => {
      for (const entry of await h.procDir.scan()) await this.recordInterrupted(h, entry, true);
    });
  }

  /**
   * A proc file whose job no process runs any more (found at start-up, or stale when `saltutil`
   * reads it): records the job's end — `lost`, or `returned` if its return was stored — and
   * removes the file. At start-up (`reap`) what is left of its processes is killed first.
   */
  private async recordInterrupted(h: Hosted, { name, data }: ProcEntry, reap: boolean): Promise<void> {
    const jid = data?.jid ?? name;
    const log = this.log.child({ agent: h.id, jid });
    try {
      const reaped = reap && data ? await reapOrphan(data.pid, { jid, id: h.id }) : false;
      // The return may have been stored just before the crash.
      // A direct get by subject: an agent may read back its own ids' subjects only.
      const stored = await this.ledger.jsm.direct.getMessage(this.config.stream, { last_by_subj: subjects.jobRet(jid, h.id) });
      const ended: ProcEndedData = {
        jid,
        id: h.id,
        fun: data?.fun ?? '',
        pid: data?.pid ?? 0,
        outcome: 'lost',
        _stamp: stampNow(),
      };
      if (stored) {
        const ev = decodeEvent(stored.data);
        if (ev.type === 'job.returned') Object.assign(ended, { outcome: 'returned', retcode: ev.data.retcode });
      }
      await this.append(
        subjects.jobProc(jid, h.id),
        { type: 'proc.ended', tag: procTag(jid, h.id, 'ended'), data: ended },
        msgIds.proc(jid, h.id, 'ended'),
      );
      await h.procDir.removeName(name);
      log.warn(
        { outcome: ended.outcome, pid: ended.pid, fun: ended.fun, reaped },
        reap ? 'job interrupted by the previous agent process' : 'proc file of a job no longer running removed',
      );
    } catch (err) {
      // An unusable file (not a jid of ours) must not stop the agent.
      log.error({ err, file: h.procDir.file(name) }, 'could not record an interrupted job; proc file removed');
      await h.procDir.removeName(name);
    }
  }

  // ── job control (saltutil) ──────────────────────────────────────────────────────────────

  /** The jobs of `id` this process runs. */
  private localJobs(id: string): LocalJob[] {
    const out: LocalJob[] = [];
    for (const r of this.running.values()) if (r.h.id === id) out.push(this.asLocal(r));
    return out;
  }

  /** The job `jid` of `id` while this process runs it. */
  private localJob(id: string, jid: string): LocalJob | undefined {
    const r = this.running.get(jobKey(id, jid));
    return r && this.asLocal(r);
  }

  private asLocal(r: Running): LocalJob {
    return {
      proc: r.proc,
      get aborted() {
        return r.abort.signal.aborted;
      },
      get finishing() {
        return r.finishing;
      },
      abort: (signal) => {
        if (terminates(signal) && !r.abort.signal.aborted) r.abort.abort(new ProcessSignalledError(signal));
      },
    };
  }

  /**
   * Appends `proc.signalled` for a signal sent to a job of `h` (by `saltutil` or by the agent
   * stopping). A job of this process records its end only after it, and not at all once its end
   * is being recorded. Signal 0 only checks that the process exists: nothing is recorded.
   */
  private recordSignal(h: Hosted, proc: ProcFile, signal: number): Promise<void> {
    if (signal === 0) return Promise.resolve();
    const r = this.running.get(jobKey(h.id, proc.jid));
    if (r?.finishing) return Promise.resolve();
    const n = (r?.signals.length ?? 0) + 1;
    const what = n === 1 ? 'signalled' : `signalled.${n}`;
    const appended = this.append(
      subjects.jobProc(proc.jid, h.id),
      {
        type: 'proc.signalled',
        tag: procTag(proc.jid, h.id, 'signalled'),
        data: { jid: proc.jid, id: h.id, fun: proc.fun, pid: proc.pid, signal, _stamp: stampNow() },
      },
      msgIds.proc(proc.jid, h.id, what),
    );
    r?.signals.push(
      appended.catch((err: unknown) => this.log.error({ err, agent: h.id, jid: proc.jid }, 'could not append proc.signalled')),
    );
    return appended;
  }

  /** `minion_start` for every id. */
  private async announce(): Promise<void> {
    const boot = randomUUID();
    await Promise.all(
      this.hosted.map((h) =>
        this.append(
          subjects.agentStart(h.id),
          {
            type: 'agent.started',
            tag: 'minion_start',
            data: {
              id: h.id,
              cmd: '_minion_event',
              pretag: null,
              tag: 'minion_start',
              data: minionStartedText(h.id, this.startedAt),
              grains: h.grains,
              version: AGENT_VERSION,
              _stamp: stampNow(),
            },
          },
          msgIds.agentStart(h.id, boot),
        ),
      ),
    );
  }

  private startSeq(): number {
    return Math.min(...this.hosted.map((h) => h.lastSeq)) + 1;
  }

  /**
   * The process's durable consumer, positioned for the id that lags most: an existing consumer
   * that has already gone past that point is recreated there.
   */
  private async openConsumer(): Promise<void> {
    const { jsm } = this.ledger;
    const startSeq = this.startSeq();
    const want = agentConsumerConfig(this.group, startSeq);
    const info = await jsm.consumers.info(this.config.stream, this.group).catch((err: unknown) => {
      if (isConsumerNotFound(err)) return undefined;
      throw err;
    });
    if (info) {
      // The server moves `delivered` over messages the filter skips, so compare job publications:
      // does one exist between startSeq and where the consumer would go on?
      const next = Math.max(info.delivered.stream_seq + 1, info.config.opt_start_seq ?? 1);
      const sameFilter = info.config.filter_subject === want.filter_subject;
      // Went past where the most lagging id stopped: an agent may not read the stream at large
      // (it holds every return), so it cannot look whether a job publication lies between; it
      // recreates the consumer, and jobs an id already started are skipped on redelivery.
      const skipped = next > startSeq;
      // Unacked deliveries to a previous process would only come back after ack_wait.
      const unacked = info.num_ack_pending > 0;
      if (sameFilter && !skipped && !unacked) return;
      this.log.info({ startSeq, consumerNext: next, sameFilter, skipped, unacked }, 'recreating the consumer for catch-up');
      await jsm.consumers.delete(this.config.stream, this.group);
    }
    await jsm.consumers.add(this.config.stream, want);
  }

  // ── consuming ───────────────────────────────────────────────────────────────────────────

  private async consumeLoop(): Promise<void> {
    try {
      const consumer = await this.ledger.js.consumers.get(this.config.stream, this.group);
      this.messages = await consumer.consume({ max_messages: 256, ...SHORT_PULLS });
      void this.watchStatus(this.messages);
      if (this.stopping.signal.aborted) await this.messages.close();
      for await (const msg of this.messages) {
        await this.handle(msg);
        if (this.stopping.signal.aborted) break;
      }
      if (!this.stopping.signal.aborted) throw new Error('the consumer stopped delivering');
    } catch (err) {
      if (this.stopping.signal.aborted) return;
      this.log.fatal({ err }, 'consuming failed');
      this.rejectClosed(err);
    }
  }

  private async watchStatus(messages: ConsumerMessages): Promise<void> {
    for await (const s of messages.status()) {
      if (s.type === 'consumer_deleted' || s.type === 'consumer_not_found') {
        this.log.error({ status: s.type }, 'the durable consumer is gone, recreating it');
        try {
          await this.ledger.jsm.consumers.add(this.config.stream, agentConsumerConfig(this.group, this.startSeq()));
        } catch (err) {
          this.log.error({ err }, 'could not recreate the consumer');
        }
      } else if (s.type === 'heartbeats_missed' || s.type === 'no_responders') {
        this.log.warn({ status: s.type }, 'consumer status');
      }
    }
  }

  private matches(h: Hosted, job: JobPublishedData): boolean {
    try {
      return matchTarget(h.id, job.tgt, job.tgt_type, { grains: h.grains }, { delimiter: job.delimiter });
    } catch (err) {
      if (err instanceof UnsupportedTargetError) return false;
      throw err;
    }
  }

  /**
   * A catch-up job this id already started (proc file, proc event or return stored). One whose
   * start is stored but not its end, and that no job of this process runs, was running inside a
   * previous process when it died, before it had a proc file: its end is recorded now, as for a
   * proc file found at start-up (`lost`, or `returned` when its return was stored).
   */
  private async alreadyHandled(h: Hosted, job: JobPublishedData): Promise<boolean> {
    const { jid } = job;
    if (this.running.has(jobKey(h.id, jid))) return true;
    if (await h.procDir.exists(jid)) return true;
    const { jsm } = this.ledger;
    const [ret, proc] = await Promise.all([
      jsm.direct.getMessage(this.config.stream, { last_by_subj: subjects.jobRet(jid, h.id) }),
      jsm.direct.getMessage(this.config.stream, { last_by_subj: subjects.jobProc(jid, h.id) }),
    ]);
    if (proc === null) return ret !== null;
    let last: LedgerEvent;
    try {
      last = decodeEvent(proc.data);
    } catch {
      return true;
    }
    if (last.type === 'proc.ended' || this.running.has(jobKey(h.id, jid))) return true;
    const pid = last.type === 'proc.started' || last.type === 'proc.signalled' ? last.data.pid : 0;
    await this.recordInterrupted(h, { name: fileName(jid), data: procFileOf(job, pid) }, true);
    return true;
  }

  private async handle(msg: JsMsg): Promise<void> {
    const seq = msg.seq;
    const log = this.log.child({ seq });
    let event: LedgerEvent;
    try {
      event = decodeEvent(msg.data);
      if (event.type !== 'job.published') throw new Error(`a ${event.type} event on a job publication subject`);
    } catch (err) {
      log.error({ err, subject: msg.subject }, 'poison message terminated');
      msg.term(String((err as Error).message).slice(0, 200));
      for (const h of this.hosted) this.advance(h, seq);
      return;
    }
    const job = event.data;
    const jlog = log.child({ jid: job.jid });
    const catchUp = seq <= this.catchUpUntil || msg.redelivered;
    const tooOld = catchUp && Date.now() - msg.time.getTime() > this.config.catchupSeconds * 1000;

    let targets: Hosted[] = [];
    for (const h of this.hosted) {
      if (seq <= h.lastSeq) continue;
      if (this.matches(h, job)) targets.push(h);
      else this.advance(h, seq);
    }
    if (tooOld && targets.length > 0) {
      jlog.info({ fun: job.fun, ids: targets.length }, 'job publication older than the catch-up window, not run');
      // One a previous process had started still gets its end recorded.
      await forEachLimit(targets, IO_PARALLEL, async (h) => {
        await this.alreadyHandled(h, job);
      });
      for (const h of targets) this.advance(h, seq);
      targets = [];
    }
    if (catchUp && targets.length > 0) {
      const fresh: Hosted[] = [];
      await forEachLimit(targets, IO_PARALLEL, async (h) => {
        if (await this.alreadyHandled(h, job)) {
          jlog.info({ agent: h.id }, 'job already handled before, not run again');
          this.advance(h, seq);
        } else {
          fresh.push(h);
        }
      });
      targets = fresh;
    }
    if (targets.length === 0) {
      msg.ack();
      return;
    }

    // Ack once every targeted id has its proc.started stored; jobs waiting for a slot keep
    // the message in progress.
    const working = setInterval(() => msg.working(), WORKING_EVERY_MS);
    let started: boolean[];
    try {
      started = await Promise.all(targets.map((h) => this.startJob(h, job, seq)));
    } finally {
      clearInterval(working);
    }
    targets.forEach((h, i) => {
      if (started[i]) this.advance(h, seq);
    });
    if (started.every(Boolean)) msg.ack();
    else msg.nak(NAK_DELAY_MS);
  }

  // ── jobs ────────────────────────────────────────────────────────────────────────────────

  /**
   * Starts `job` on `h`: takes a slot, writes the proc file, starts the function, appends
   * proc.started. Resolves true once proc.started is stored (the job then runs on), false if
   * the job could not be started (nothing is left behind; the message is redelivered).
   *
   * A shell function's proc file is written before it starts (its child may outlive the agent:
   * the next start finds and kills it). A function running inside the agent gets its file only
   * if it is still running after `procFileAfterMs`: most end within milliseconds, and two file
   * operations per id and job were most of an agent's time in a burst. Until then the job is
   * known in memory, and the id's stored progress stays below it (`putProgress`).
   */
  private async startJob(h: Hosted, job: JobPublishedData, seq: number): Promise<boolean> {
    const log = this.log.child({ jid: job.jid, agent: h.id, seq });
    const key = jobKey(h.id, job.jid);
    if (this.running.has(key)) return true;
    let release: () => void;
    try {
      release = await this.slots.acquire(this.stopping.signal);
    } catch {
      return false; // stopping
    }
    if (this.running.has(key)) {
      release();
      return true;
    }
    // Known before its proc file exists, so `saltutil` never takes the file for a stale one.
    const r: Running = {
      h,
      seq,
      proc: procFileOf(job, process.pid),
      fileWritten: false,
      abort: new AbortController(),
      signals: [],
      finishing: false,
    };
    this.running.set(key, r);
    const forget = () => {
      clearTimeout(r.fileTimer);
      if (this.running.get(key) === r) this.running.delete(key);
      // Its progress may have been held back by it.
      if (!r.fileWritten) h.dirty = true;
    };
    const { proc, abort } = r;
    const shell = this.extensions.functions.lookup(job.fun)?.kind === 'shell';
    if (shell || this.config.procFileAfterMs === 0) {
      try {
        await this.writeProcFile(r);
      } catch (err) {
        forget();
        release();
        log.error({ err }, 'could not write the proc file; job not started');
        return false;
      }
    } else {
      r.fileTimer = setTimeout(() => {
        if (r.finishing || r.fileWritten) return;
        this.writeProcFile(r).catch((err: unknown) => log.warn({ err }, 'could not write the proc file of a running job'));
      }, this.config.procFileAfterMs);
      r.fileTimer.unref();
    }

    let onSpawn!: (pid: number) => void;
    const spawned = new Promise<number>((resolve) => (onSpawn = resolve));
    const ctx: ExecContext = {
      id: h.id,
      jid: job.jid,
      grains: h.grains,
      signal: abort.signal,
      spawned: onSpawn,
      functionNames: () => this.extensions.functions.names(),
      lookupFunction: (fun) => this.extensions.functions.lookup(fun),
      returnerNames: () => this.extensions.returners(h.id).names(),
      returner: (name) => this.extensions.returners(h.id).get(name, {}),
      jobs: h.jobs,
    };
    const outcome = execute(job.fun, job.arg, ctx);
    const ran = outcome.finally(release);

    if (shell) {
      const pid = await Promise.race([spawned, outcome.then(() => process.pid)]);
      if (pid !== process.pid) {
        proc.pid = pid;
        await h.procDir.write(proc).catch((err: unknown) => log.warn({ err }, 'could not record the child pid in the proc file'));
      }
    }

    const procData = {
      jid: job.jid,
      id: h.id,
      fun: job.fun,
      pid: proc.pid,
      arg: job.arg,
      tgt: job.tgt,
      tgt_type: job.tgt_type,
      user: job.user,
    };
    try {
      await this.append(
        subjects.jobProc(job.jid, h.id),
        { type: 'proc.started', tag: procTag(job.jid, h.id, 'started'), data: { ...procData, _stamp: stampNow() } },
        msgIds.proc(job.jid, h.id, 'started'),
      );
    } catch (err) {
      abort.abort();
      r.finishing = true;
      await ran;
      if (r.fileWritten) await h.procDir.remove(job.jid).catch(() => undefined);
      forget();
      log.error({ err }, 'could not append proc.started; job cancelled');
      return false;
    }
    log.debug({ fun: job.fun, pid: proc.pid }, 'job started');

    r.done = ran
      .then((o) => this.finishJob(r, job, o, log))
      .catch((err: unknown) => log.error({ err }, 'could not record the end of the job; its proc file stays for the next start'))
      .finally(forget);
    return true;
  }

  /**
   * Appends the return (or, for a job ended by a signal, nothing) and proc.ended — after any
   * proc.signalled of the job; the proc file goes once both are stored.
   */
  private async finishJob(r: Running, job: JobPublishedData, outcome: Outcome, log: Logger): Promise<void> {
    const { h, proc } = r;
    r.finishing = true;
    clearTimeout(r.fileTimer);
    const base = { jid: job.jid, id: h.id, fun: job.fun, pid: proc.pid };
    let ended: ProcEndedData;
    if (outcome.kind === 'returned') {
      const stored = await this.appendReturn(h, job, outcome);
      // Salt's minion calls the `--return` returners once its return is sent; here once it is stored.
      this.returnerCalls.schedule(job, stored);
      ended = { ...base, outcome: 'returned', retcode: outcome.retcode, _stamp: stampNow() };
      log.debug({ retcode: outcome.retcode }, 'job returned');
    } else {
      // As Salt's minion, whose job process is gone: no return.
      ended = { ...base, outcome: 'signalled', signal: outcome.signal, _stamp: stampNow() };
      log.info({ signal: outcome.signal, signals: r.signals.length }, 'job ended by a signal, no return');
    }
    await Promise.all(r.signals);
    await this.append(
      subjects.jobProc(job.jid, h.id),
      { type: 'proc.ended', tag: procTag(job.jid, h.id, 'ended'), data: ended },
      msgIds.proc(job.jid, h.id, 'ended'),
    );
    if (r.fileWritten) await h.procDir.remove(job.jid);
  }

  /** Writes the job's proc file (again, once a shell function's child pid is known). */
  private async writeProcFile(r: Running): Promise<void> {
    r.fileWritten = true;
    try {
      await r.h.procDir.write(r.proc);
    } catch (err) {
      r.fileWritten = false;
      throw err;
    }
  }

  /** Salt's return load, on `ledger.job.<jid>.ret.<id>`; resolves to the stored data. */
  private async appendReturn(h: Hosted, job: JobPublishedData, outcome: Extract<Outcome, { kind: 'returned' }>): Promise<JobReturnedData> {
    const event = (ret: unknown, retcode: number, out: string | undefined): JobReturned => ({
      type: 'job.returned',
      tag: jobReturnedTag(job.jid, h.id),
      data: {
        cmd: '_return',
        id: h.id,
        jid: job.jid,
        fun: job.fun,
        fun_args: job.arg,
        return: ret === undefined ? null : ret,
        retcode,
        success: retcode === 0,
        user: job.user,
        ...(out !== undefined ? { out } : {}),
        ...(typeof job.master_id === 'string' ? { master_id: job.master_id } : {}),
        ...(job.metadata !== undefined ? { metadata: job.metadata } : {}),
        _stamp: stampNow(),
      },
    });
    const full = event(outcome.return, outcome.retcode, outcome.out);
    let stored = full;
    let body = encodeEvent(stored);
    const max = this.ledger.nc.info?.max_payload ?? 1024 * 1024;
    if (body.length + HEADER_ROOM > max) {
      // Too large for one message: the return goes to the object store, the event names it.
      try {
        const ref = await storeReturn(this.ledger, job.jid, h.id, full.data.return);
        stored = { ...full, data: { ...full.data, return: null, return_object: ref } };
        body = encodeEvent(stored);
      } catch (err) {
        this.log.error({ jid: job.jid, agent: h.id, err }, 'a large return could not be stored in the object store');
        const text = `ERROR: the return of ${job.fun} is ${body.length} bytes and could not be stored: ${(err as Error).message}`;
        stored = event(text, 1, 'nested');
        body = encodeEvent(stored);
      }
      if (body.length + HEADER_ROOM > max) {
        const text = `ERROR: the return of ${job.fun} is ${body.length} bytes, more than the ${max}-byte message limit; it was not stored`;
        stored = event(text, 1, 'nested');
        body = encodeEvent(stored);
      }
    }
    await this.publisher.publish(subjects.jobRet(job.jid, h.id), body, msgIds.jobRet(job.jid, h.id));
    // Returners get the whole return, also when the ledger keeps it in the object store.
    return stored.data.return_object !== undefined ? full.data : stored.data;
  }

  private async append(subject: string, event: LedgerEvent, msgID: string): Promise<void> {
    await this.publisher.publish(subject, encodeEvent(event), msgID);
  }

  // ── stopping ────────────────────────────────────────────────────────────────────────────

  stop(): Promise<void> {
    this.stopped ??= this.shutdown().then(
      () => this.resolveClosed(),
      (err: unknown) => {
        this.rejectClosed(err);
        throw err;
      },
    );
    return this.stopped;
  }

  /** Cancels a running job: SIGTERM to its processes (SIGKILL later), or its end inside the agent. */
  private cancel(r: Running): void {
    if (r.finishing || r.abort.signal.aborted) return;
    r.abort.abort(new ProcessSignalledError(SIGTERM));
    void this.recordSignal(r.h, r.proc, SIGTERM).catch(() => undefined);
  }

  private async shutdown(): Promise<void> {
    const t0 = performance.now();
    this.stopping.abort(new Error('agent stopping'));
    await this.messages?.close().catch(() => undefined);
    clearInterval(this.flushTimer);
    // The message being handled finishes starting its jobs (or gives them up) first.
    await this.loop;

    const jobs = () => [...this.running.values()];
    const atStop = this.running.size;
    const allDone = () => Promise.allSettled(jobs().map((r) => r.done ?? Promise.resolve()));
    const timedOut = await Promise.race([allDone().then(() => false), sleep(this.config.stopGraceMs).then(() => true)]);
    if (timedOut) {
      this.log.warn({ jobs: this.running.size }, 'jobs still running after the grace period, cancelling them');
      for (const r of jobs()) this.cancel(r);
      await Promise.race([allDone(), sleep(CANCEL_WAIT_MS)]);
    }
    // Returners of the jobs that returned, and their returner.failed events, before the connection
    // goes. No returner is called after this (a job ending later records returner.failed): the
    // returners are closed next and must not be made again.
    const returners = this.returnerCalls.size;
    if (!(await this.returnerCalls.close(RETURNERS_STOP_WAIT_MS))) {
      this.log.warn({ calls: this.returnerCalls.size }, 'returner calls still running at stop, not waited for');
    }
    await this.extensions.closeReturners().catch((err: unknown) => this.log.error({ err }, 'could not close the returners'));
    await this.flushing;
    await this.flushLastSeq();
    await this.publisher.settled();
    await this.ledger.nc.drain().catch(() => this.ledger.nc.close());
    this.log.info({ runningAtStop: atStop, returnersAtStop: returners, ms: Math.round(performance.now() - t0) }, 'agent stopped');
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
