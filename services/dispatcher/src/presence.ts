import { KvWatchInclude, type KV, type KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
import { decodeAgentId, type AgentPresence, type KnownAgent } from '@jobledger/core';
import type { Logger } from '@jobledger/runtime';
import { LedgerUnavailableError } from './errors.js';

export interface AgentDirectoryOptions {
  kv: KV;
  logger: Logger;
  /** How long a key listing or a bucket status may take. */
  timeoutMs?: number;
}

/** How long `current()` keeps asking a bucket that does not answer (below the CLI's 20 s wait). */
const PRESENCE_RETRY_MS = 8_000;

export type PresenceSource = 'watch' | 'keys';

/**
 * The agents that announced themselves in the presence bucket (Salt's accepted minion keys),
 * with the grains each last wrote (Salt's minion data cache). Kept in memory through a KV watch
 * (last values, then updates); `current()` answers from memory only when the watch has seen
 * the bucket's last revision, and reads the keys otherwise, so an agent that put its key
 * before it reported ready always counts.
 */
export class AgentDirectory {
  private readonly kv: KV;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  /** KV key → agent id and grains. */
  private readonly agents = new Map<string, KnownAgent>();
  /** Highest bucket revision (stream sequence) the watch has applied. */
  private revision = 0;
  private watcher: QueuedIterator<KvWatchEntry> | undefined;
  private loop: Promise<void> | undefined;
  private stopped = false;
  private waiters: Array<{ revision: number; resolve: () => void }> = [];

  private constructor(opts: AgentDirectoryOptions) {
    this.kv = opts.kv;
    this.log = opts.logger;
    this.timeoutMs = opts.timeoutMs ?? 2_000;
  }

  /** Starts the watch and waits (bounded) until it has applied the bucket as it is now. */
  static async open(opts: AgentDirectoryOptions): Promise<AgentDirectory> {
    const d = new AgentDirectory(opts);
    await d.startWatch();
    const target = await d.lastRevision();
    if (!(await d.waitFor(target, d.timeoutMs))) {
      d.log.warn({ revision: d.revision, target }, 'presence watch not caught up yet; requests read the bucket keys meanwhile');
    }
    return d;
  }

  /** Ids known from the watch, unsorted. */
  known(): string[] {
    return [...this.agents.values()].map((a) => a.id);
  }

  /** Agents known from the watch, with their grains when they wrote any; unsorted. */
  knownAgents(): KnownAgent[] {
    return [...this.agents.values()];
  }

  /** The agents as of now (`ids` for callers that need only those), and where they came from. */
  async current(): Promise<{ ids: string[]; agents: KnownAgent[]; source: PresenceSource }> {
    // A bucket without a leader (an election in a cluster, a restarting server) is asked again.
    const deadline = Date.now() + PRESENCE_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        const last = await this.lastRevision();
        const agents = this.revision >= last ? this.knownAgents() : await this.readAgents();
        return { ids: agents.map((a) => a.id), agents, source: this.revision >= last ? 'watch' : 'keys' };
      } catch (err) {
        if (!(err instanceof LedgerUnavailableError) || this.stopped || Date.now() >= deadline) throw err;
        this.log.warn({ err, attempt }, 'agent presence bucket not answering; asking again');
        await new Promise((r) => setTimeout(r, Math.min(1_000, 100 * attempt)));
      }
    }
  }

  /** Lists the bucket's keys (`kv.keys()`), decoded to agent ids. */
  async readKeys(): Promise<string[]> {
    return (await this.listKeys()).map(([, id]) => id);
  }

  /**
   * Lists the bucket's keys; the grains of an id the watch has not seen yet are read from its
   * value (an id whose value cannot be read is still counted, without grains).
   */
  async readAgents(): Promise<KnownAgent[]> {
    const out: KnownAgent[] = [];
    for (const [key, id] of await this.listKeys()) {
      const seen = this.agents.get(key);
      if (seen !== undefined) {
        out.push(seen);
        continue;
      }
      const entry = await this.bounded('reading an agent presence value', () => this.kv.get(key)).catch((err: unknown) => {
        this.log.warn({ key, err }, 'could not read an agent presence value; its grains are unknown');
        return null;
      });
      out.push(entry?.operation === 'PUT' ? this.toAgent(id, entry.string()) : { id });
    }
    return out;
  }

  private async listKeys(): Promise<Array<[string, string]>> {
    const keys: Array<[string, string]> = [];
    let it: QueuedIterator<string> | undefined;
    try {
      await this.bounded('reading agent presence keys', async () => {
        it = await this.kv.keys();
        for await (const key of it) {
          const id = this.decode(key);
          if (id !== undefined) keys.push([key, id]);
        }
      });
    } finally {
      it?.stop(); // a listing cut short by the timeout must not keep its consumer
    }
    return keys;
  }

  /** An id and the grains of its presence value (none when the value is not an AgentPresence). */
  private toAgent(id: string, value: string): KnownAgent {
    try {
      const p = JSON.parse(value) as Partial<AgentPresence>;
      const grains = p.grains;
      if (typeof grains === 'object' && grains !== null && !Array.isArray(grains)) return { id, grains };
    } catch {
      /* not JSON: grains unknown */
    }
    return { id };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.stop();
    await this.loop;
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  private async lastRevision(): Promise<number> {
    const status = await this.bounded('reading the agent presence bucket', () => this.kv.status());
    return status.streamInfo.state.last_seq;
  }

  private async startWatch(): Promise<void> {
    this.agents.clear();
    this.revision = 0;
    this.watcher = await this.kv.watch({ include: KvWatchInclude.LastValue });
    this.loop = this.run(this.watcher);
  }

  private async run(watcher: QueuedIterator<KvWatchEntry>): Promise<void> {
    try {
      for await (const e of watcher) this.apply(e);
    } catch (err) {
      this.log.error({ err }, 'presence watch failed');
    }
    if (this.stopped) return;
    // The watch ended under us (server restart, consumer lost): start over. Until it has caught
    // up, current() sees a lagging revision and reads the keys instead.
    this.log.warn('presence watch ended; restarting');
    for (let delay = 250; !this.stopped; delay = Math.min(delay * 2, 5_000)) {
      await new Promise((r) => setTimeout(r, delay));
      if (this.stopped) return;
      try {
        await this.startWatch();
        return;
      } catch (err) {
        this.log.warn({ err }, 'presence watch restart failed');
      }
    }
  }

  private apply(e: KvWatchEntry): void {
    if (e.revision > this.revision) this.revision = e.revision;
    if (e.operation === 'PUT') {
      const id = this.decode(e.key);
      if (id !== undefined) this.agents.set(e.key, this.toAgent(id, e.string()));
    } else {
      this.agents.delete(e.key);
    }
    if (this.waiters.length > 0) {
      const ready = this.waiters.filter((w) => w.revision <= this.revision);
      this.waiters = this.waiters.filter((w) => w.revision > this.revision);
      for (const w of ready) w.resolve();
    }
  }

  private decode(key: string): string | undefined {
    try {
      return decodeAgentId(key);
    } catch (err) {
      this.log.warn({ key, err }, 'ignoring a presence key that is not an encoded agent id');
      return undefined;
    }
  }

  /** Resolves true once the watch has applied `revision`, false after `ms`. */
  private waitFor(revision: number, ms: number): Promise<boolean> {
    if (this.revision >= revision) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, ms);
      const waiter = {
        revision,
        resolve: () => {
          clearTimeout(timer);
          resolve(this.revision >= revision);
        },
      };
      this.waiters.push(waiter);
    });
  }

  private async bounded<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new LedgerUnavailableError(`${what} timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (err) {
      if (err instanceof LedgerUnavailableError) throw err;
      throw new LedgerUnavailableError(`${what} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
}
