import type { JobReturnedData } from '@jobledger/core';

/**
 * How Salt's CLI waits for a job (salt/client/__init__.py `get_iter_returns`): returns are
 * yielded as they arrive; once `timeout` has passed with agents still out, the CLI publishes
 * `saltutil.find_job [<jid>]` to them (an ordinary job, list target) and an agent whose reply is
 * a non-empty mapping is still running the job: its deadline moves to now + `timeout`. Every
 * `gather_job_timeout` the agents still running are asked again. The wait ends when every
 * expected agent returned, or when the last ping window has passed with nobody running and
 * every outstanding agent's deadline is over. A find_job reply with a non-zero retcode takes
 * the agent out of the wait (and out of the report), as in Salt.
 */

/** A live subscription to the returns of one job. */
export interface ReturnWatch {
  stop(): Promise<void>;
}

/** What the wait needs from the ledger. */
export interface WaitSource {
  /** Delivers every return of `jid` stored from stream sequence `fromSeq` on. */
  watch(jid: string, fromSeq: number, onReturn: (ret: JobReturnedData) => void): Promise<ReturnWatch>;
  /**
   * Publishes `saltutil.find_job [jid]` to `ids` (`tgt_type: list`); undefined when nothing was
   * published (no agent matched, or the dispatcher could not be reached).
   */
  findJob(jid: string, ids: string[]): Promise<{ jid: string; seq: number } | undefined>;
}

export interface WaitOptions {
  jid: string;
  /** Stream sequence of the job's publication. */
  seq: number;
  /** Agents expected to answer. */
  minions: readonly string[];
  /** Names of a list target no agent has (always reported as not returned). */
  missing: readonly string[];
  timeoutMs: number;
  gatherJobTimeoutMs: number;
  /** Report silent agents (`-v`, or unless `--hide-timeout`). */
  expectMinions: boolean;
  /** Milliseconds clock (tests). */
  now?: () => number;
}

export type WaitEvent =
  | { type: 'return'; ret: JobReturnedData }
  /** An agent that did not return (`missing` marks a list name no agent has). */
  | { type: 'no-response'; id: string; missing: boolean };

/** A queue the waiting loop sleeps on until something arrives or a time has come. */
class Mailbox<T> {
  private items: T[] = [];
  private wake: (() => void) | undefined;

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  drain(): T[] {
    const out = this.items;
    this.items = [];
    return out;
  }

  /** Resolves when an item is queued, or after `ms`. */
  async wait(ms: number): Promise<void> {
    if (this.items.length > 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      timer = setTimeout(resolve, Math.max(0, ms));
    });
    clearTimeout(timer);
    this.wake = undefined;
  }
}

type Incoming = { kind: 'ret'; data: JobReturnedData } | { kind: 'ping'; jid: string; data: JobReturnedData };

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether a find_job reply says the job is still running there: a non-empty proc mapping. */
export function stillRunning(reply: unknown): boolean {
  if (!isMapping(reply) || Object.keys(reply).length === 0) return false;
  const inner = reply.return;
  return !(isMapping(inner) && Object.keys(inner).length === 0);
}

export async function* waitForReturns(source: WaitSource, opts: WaitOptions): AsyncGenerator<WaitEvent> {
  const now = opts.now ?? Date.now;
  const mailbox = new Mailbox<Incoming>();
  const minions = new Set(opts.minions);
  const found = new Set<string>();
  const deadlines = new Map<string, number>();
  let timeoutAt = now() + opts.timeoutMs;
  let running = true; // Salt starts as if someone ran the job, so the first ping happens
  let pingJid: string | undefined;
  let pingWatch: ReturnWatch | undefined;

  const outstanding = (): string[] => [...minions].filter((m) => !found.has(m));
  const main = await source.watch(opts.jid, opts.seq, (data) => mailbox.push({ kind: 'ret', data }));
  try {
    for (;;) {
      for (const item of mailbox.drain()) {
        const id = item.data.id;
        if (item.kind === 'ret') {
          found.add(id);
          yield { type: 'return', ret: item.data };
          continue;
        }
        if (item.jid !== pingJid) continue; // a reply to an older ping
        if (item.data.retcode > 0) {
          minions.delete(id); // saltutil returning errors on that agent
          continue;
        }
        if (!stillRunning(item.data.return)) continue;
        minions.add(id);
        deadlines.set(id, now() + opts.timeoutMs);
        running = true;
      }

      if (outstanding().length === 0) break;
      for (const id of outstanding()) if (!deadlines.has(id)) deadlines.set(id, now() + opts.timeoutMs);

      if (now() > timeoutAt && running) {
        const ids = outstanding();
        await pingWatch?.stop();
        pingWatch = undefined;
        pingJid = undefined;
        const pub = await source.findJob(opts.jid, ids);
        running = false;
        if (pub !== undefined) {
          pingJid = pub.jid;
          const pj = pub.jid;
          pingWatch = await source.watch(pub.jid, pub.seq, (data) => mailbox.push({ kind: 'ping', jid: pj, data }));
        }
        timeoutAt = now() + opts.gatherJobTimeoutMs;
        continue; // look at what arrived meanwhile before deciding anything
      }

      const t = now();
      let done = t > timeoutAt && !running;
      let lastDeadline = 0;
      for (const id of outstanding()) lastDeadline = Math.max(lastDeadline, deadlines.get(id) ?? 0);
      if (done && t < lastDeadline) done = false;
      if (done) break;

      // Sleep until something arrives, or the next moment the state above can change.
      const wakeAt = t <= timeoutAt ? timeoutAt + 1 : running ? t : lastDeadline + 1;
      await mailbox.wait(wakeAt - t);
    }
  } finally {
    await Promise.allSettled([main.stop(), pingWatch?.stop()]);
  }

  if (opts.expectMinions) {
    for (const id of outstanding()) yield { type: 'no-response', id, missing: false };
  }
  // List names no agent has are reported whatever --hide-timeout says (minus any that returned).
  for (const id of opts.missing) if (!found.has(id)) yield { type: 'no-response', id, missing: true };
}
