import { describe, expect, it } from 'vitest';
import type { JobReturnedData } from '@jobledger/core';
import { stillRunning, waitForReturns, type WaitEvent, type WaitOptions, type WaitSource } from './job-wait.js';

const JID = '20261125181415937764';

function ret(id: string, jid: string, value: unknown, retcode = 0): JobReturnedData {
  return {
    cmd: '_return',
    id,
    jid,
    fun: 'x',
    fun_args: [],
    return: value,
    retcode,
    success: retcode === 0,
    user: 'root',
    _stamp: '2026-11-25T18:14:15.937764',
  };
}

/** A ledger in memory: returns are emitted by the test; find_job replies by `reply(id)`. */
class FakeLedger implements WaitSource {
  private readonly listeners = new Map<string, (r: JobReturnedData) => void>();
  readonly pings: Array<{ at: number; ids: string[] }> = [];
  private n = 0;
  readonly started = Date.now();
  constructor(private readonly reply: (id: string) => { value: unknown; retcode?: number } | undefined) {}

  async watch(jid: string, _seq: number, onReturn: (r: JobReturnedData) => void) {
    this.listeners.set(jid, onReturn);
    return { stop: async () => void this.listeners.delete(jid) };
  }

  async findJob(jid: string, ids: string[]) {
    expect(jid).toBe(JID);
    this.pings.push({ at: Date.now() - this.started, ids });
    const pingJid = `2026112518141593${String(++this.n).padStart(4, '0')}`;
    setTimeout(() => {
      for (const id of ids) {
        const r = this.reply(id);
        if (r) this.emit(pingJid, ret(id, pingJid, r.value, r.retcode));
      }
    }, 5);
    return { jid: pingJid, seq: 1 };
  }

  emit(jid: string, r: JobReturnedData): void {
    this.listeners.get(jid)?.(r);
  }

  returnLater(id: string, ms: number, value: unknown = true): void {
    setTimeout(() => this.emit(JID, ret(id, JID, value)), ms);
  }
}

async function collect(
  source: WaitSource,
  opts: Partial<WaitOptions> & { minions: string[] },
): Promise<{ events: WaitEvent[]; ms: number }> {
  const t0 = Date.now();
  const events: WaitEvent[] = [];
  for await (const e of waitForReturns(source, {
    jid: JID,
    seq: 1,
    missing: [],
    timeoutMs: 150,
    gatherJobTimeoutMs: 300,
    expectMinions: true,
    ...opts,
  })) {
    events.push(e);
  }
  return { events, ms: Date.now() - t0 };
}

const PROC = { fun: 'cmd.run', jid: JID, pid: 42, arg: ['sleep 1'] };

describe('waitForReturns (Salt get_iter_returns)', () => {
  it('ends as soon as every expected agent returned, without asking anyone', async () => {
    const ledger = new FakeLedger(() => ({ value: {} }));
    ledger.returnLater('a', 10);
    ledger.returnLater('b', 30);
    const { events, ms } = await collect(ledger, { minions: ['a', 'b'] });
    expect(events.map((e) => (e.type === 'return' ? e.ret.id : e))).toEqual(['a', 'b']);
    expect(ledger.pings).toEqual([]);
    expect(ms).toBeLessThan(150);
  });

  it('asks a silent agent with find_job after the timeout, then reports it after gather_job_timeout', async () => {
    const ledger = new FakeLedger(() => ({ value: {} })); // not running there
    ledger.returnLater('a', 10);
    const { events, ms } = await collect(ledger, { minions: ['a', 'b'] });
    expect(events).toEqual([expect.objectContaining({ type: 'return' }), { type: 'no-response', id: 'b', missing: false }]);
    expect(ledger.pings.map((p) => p.ids)).toEqual([['b']]);
    expect(ledger.pings[0]!.at).toBeGreaterThanOrEqual(150);
    expect(ms).toBeGreaterThanOrEqual(450); // timeout + gather_job_timeout
    expect(ms).toBeLessThan(1000);
  });

  it('keeps waiting while find_job says the job runs, and prints the real return', async () => {
    const ledger = new FakeLedger(() => ({ value: PROC }));
    ledger.returnLater('a', 900, 'done');
    const { events } = await collect(ledger, { minions: ['a'] });
    expect(events).toEqual([{ type: 'return', ret: expect.objectContaining({ id: 'a', return: 'done' }) }]);
    // pings at ~150, ~450, ~750 ms: one every gather_job_timeout while it runs
    expect(ledger.pings.length).toBeGreaterThanOrEqual(2);
    expect(ledger.pings[1]!.at - ledger.pings[0]!.at).toBeGreaterThanOrEqual(300);
  });

  it('stops waiting once the job is no longer running and the deadline has passed', async () => {
    let calls = 0;
    const ledger = new FakeLedger(() => (++calls === 1 ? { value: PROC } : { value: {} }));
    const { events, ms } = await collect(ledger, { minions: ['a'] });
    expect(events).toEqual([{ type: 'no-response', id: 'a', missing: false }]);
    expect(ledger.pings.length).toBe(2);
    expect(ms).toBeGreaterThanOrEqual(750);
  });

  it('an agent whose find_job fails (retcode > 0) leaves the wait unreported', async () => {
    const ledger = new FakeLedger(() => ({ value: "'saltutil.find_job' is not available.", retcode: 1 }));
    const { events } = await collect(ledger, { minions: ['a'] });
    expect(events).toEqual([]);
  });

  it('--hide-timeout hides silent agents but not list names no agent has', async () => {
    const ledger = new FakeLedger(() => undefined);
    ledger.returnLater('a', 10);
    const { events } = await collect(ledger, { minions: ['a', 'b'], missing: ['ghost'], expectMinions: false });
    expect(events).toEqual([expect.objectContaining({ type: 'return' }), { type: 'no-response', id: 'ghost', missing: true }]);
  });

  it('reports list names no agent has even when everyone returned', async () => {
    const ledger = new FakeLedger(() => undefined);
    ledger.returnLater('a', 5);
    const { events, ms } = await collect(ledger, { minions: ['a'], missing: ['ghost'] });
    expect(events.map((e) => e.type)).toEqual(['return', 'no-response']);
    expect(ms).toBeLessThan(150);
  });
});

describe('stillRunning', () => {
  it('only a non-empty proc mapping means running', () => {
    expect(stillRunning(PROC)).toBe(true);
    expect(stillRunning({})).toBe(false);
    expect(stillRunning('ERROR')).toBe(false);
    expect(stillRunning([])).toBe(false);
    expect(stillRunning({ return: {} })).toBe(false);
  });
});
