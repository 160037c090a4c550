import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  ReturnerError,
  type JobPublishedData,
  type JobReturnedData,
  type LedgerEvent,
  type Returner,
  type ReturnLoad,
} from '@jobledger/core';
import { minionReturnLoad, ReturnerCalls, returnerNamesOf, type ReturnerSource } from './returner-calls.js';

const JID = '20261126010000000001';
const job: JobPublishedData = {
  jid: JID,
  tgt: '*',
  tgt_type: 'glob',
  user: 'root',
  fun: 'test.ping',
  arg: [],
  minions: ['a', 'b'],
  missing: [],
  ret: ' mem , broken,,mem ,nope',
  ret_config: 'alt',
  ret_kwargs: { k: 1 },
  _stamp: '2026-11-26T01:00:00.000001',
};
const stored = (id: string): JobReturnedData => ({
  cmd: '_return',
  id,
  jid: JID,
  fun: 'test.ping',
  fun_args: [],
  return: true,
  retcode: 0,
  success: true,
  user: 'root',
  _stamp: '2026-11-26T01:00:00.100001',
});

/** Returners kept in memory: `mem` stores, `broken` throws a retryable ReturnerError, others are unknown. */
function memorySource(calls: string[], gate?: Promise<void>): ReturnerSource {
  const mem: Returner = {
    returner: async (ret: ReturnLoad) => {
      await gate;
      calls.push(`returner ${ret.id} ${JSON.stringify(ret)}`);
    },
    saveLoad: async (jid, load, minions) => {
      await new Promise((r) => setTimeout(r, 20));
      calls.push(`saveLoad ${jid} ${String(load.fun)} ${minions?.join(',')}`);
    },
  };
  const broken: Returner = {
    returner: async () => {
      throw new ReturnerError('broken', 'connection refused', { retryable: true });
    },
  };
  return {
    names: async () => ['broken', 'mem'],
    get: async (name, opts) => {
      calls.push(`get ${name} ${opts.retConfig} ${JSON.stringify(opts.retKwargs)}`);
      if (name === 'mem') return mem;
      if (name === 'broken') return broken;
      throw new ReturnerError(name, `'${name}' is not a returner`, { retryable: false });
    },
    closeAll: async () => undefined,
  };
}

describe('returner calls', () => {
  it("reads the job's ret as Salt does: comma-separated, trimmed, empty ignored", () => {
    expect(returnerNamesOf(' mem , broken,,mem ,nope')).toEqual(['mem', 'broken', 'nope']);
    expect(returnerNamesOf('')).toEqual([]);
    expect(returnerNamesOf(undefined)).toEqual([]);
  });

  it("gives the returners Salt's minion-side return: no cmd, _stamp or user; ret_config and ret_kwargs", () => {
    expect(minionReturnLoad({ ...stored('a'), out: 'nested', metadata: { t: 1 } }, job)).toEqual({
      id: 'a',
      jid: JID,
      fun: 'test.ping',
      fun_args: [],
      return: true,
      retcode: 0,
      success: true,
      out: 'nested',
      metadata: { t: 1 },
      ret_config: 'alt',
      ret_kwargs: { k: 1 },
    });
  });

  it('saves the load once per jid, calls every returner, records each failure once', async () => {
    const calls: string[] = [];
    const appended: Array<{ subject: string; event: LedgerEvent; msgID: string }> = [];
    const rc = new ReturnerCalls({
      source: () => memorySource(calls),
      append: async (subject, event, msgID) => void appended.push({ subject, event, msgID }),
      log: pino({ level: 'silent' }),
    });
    rc.schedule(job, stored('a'));
    rc.schedule(job, stored('b'));
    expect(await rc.settled(5_000)).toBe(true);
    expect(calls.filter((c) => c.startsWith('saveLoad'))).toEqual([`saveLoad ${JID} test.ping a,b`]);
    expect(
      calls
        .filter((c) => c.startsWith('returner'))
        .map((c) => c.split(' ')[1])
        .sort(),
    ).toEqual(['a', 'b']);
    // Each id's returner call comes after the load is saved.
    expect(calls.findIndex((c) => c.startsWith('saveLoad'))).toBeLessThan(calls.findIndex((c) => c.startsWith('returner')));
    expect(calls).toContain('get mem alt {"k":1}');
    const failures = appended.map((a) => [
      a.subject,
      a.msgID,
      a.event.type,
      (a.event.data as { error: string }).error,
      (a.event.data as { retryable: boolean }).retryable,
    ]);
    expect(failures.sort()).toEqual(
      [
        [
          `ledger.job.${JID}.returner.a`,
          `${JID}:returner:a:broken`,
          'returner.failed',
          "The specified 'broken' returner threw a stack trace: connection refused",
          true,
        ],
        [
          `ledger.job.${JID}.returner.a`,
          `${JID}:returner:a:nope`,
          'returner.failed',
          "The specified 'nope' returner threw a stack trace: 'nope' is not a returner",
          false,
        ],
        [
          `ledger.job.${JID}.returner.b`,
          `${JID}:returner:b:broken`,
          'returner.failed',
          "The specified 'broken' returner threw a stack trace: connection refused",
          true,
        ],
        [
          `ledger.job.${JID}.returner.b`,
          `${JID}:returner:b:nope`,
          'returner.failed',
          "The specified 'nope' returner threw a stack trace: 'nope' is not a returner",
          false,
        ],
      ].sort(),
    );
    expect(appended.every((a) => a.event.tag === `salt/job/${JID}/returner/${(a.event.data as { id: string }).id}`)).toBe(true);
  });

  it('runs in the background, and settled() tells whether the calls finished in time', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const calls: string[] = [];
    const rc = new ReturnerCalls({
      source: () => memorySource(calls, gate),
      append: async () => undefined,
      log: pino({ level: 'silent' }),
    });
    rc.schedule({ ...job, ret: 'mem' }, stored('a'));
    expect(rc.size).toBe(1);
    expect(await rc.settled(50)).toBe(false);
    open();
    expect(await rc.settled(5_000)).toBe(true);
    expect(rc.size).toBe(0);
  });

  it('a returner that hangs counts as failed (retryable) after the call timeout', async () => {
    const appended: LedgerEvent[] = [];
    const rc = new ReturnerCalls({
      source: () => ({
        names: async () => [],
        get: async () => ({ returner: () => new Promise<void>(() => undefined) }),
        closeAll: async () => undefined,
      }),
      append: async (_s, event) => void appended.push(event),
      log: pino({ level: 'silent' }),
      callTimeoutMs: 30,
    });
    rc.schedule({ ...job, ret: 'slow' }, stored('a'));
    expect(await rc.settled(5_000)).toBe(true);
    expect(appended).toHaveLength(1);
    expect(appended[0]!.data).toMatchObject({ returner: 'slow', retryable: true, error: "'slow.returner' did not finish within 30 ms" });
  });

  it('loading the returner counts against the call timeout and gives its slot back', async () => {
    const appended: LedgerEvent[] = [];
    const calls: string[] = [];
    const rc = new ReturnerCalls({
      source: () => ({
        names: async () => [],
        get: async (name) => {
          calls.push(`get ${name}`);
          if (name === 'stuck') return new Promise<Returner>(() => undefined);
          return { returner: async (ret: ReturnLoad) => void calls.push(`returner ${name} ${ret.id}`) };
        },
        closeAll: async () => undefined,
      }),
      append: async (_s, event) => void appended.push(event),
      log: pino({ level: 'silent' }),
      concurrency: 1,
      callTimeoutMs: 30,
    });
    rc.schedule({ ...job, ret: 'stuck,mem' }, stored('a'));
    expect(await rc.settled(5_000)).toBe(true);
    expect(appended.map((e) => e.data)).toMatchObject([
      { returner: 'stuck', retryable: true, error: "loading 'stuck' did not finish within 30 ms" },
    ]);
    // the one slot was given back: the next returner ran
    expect(calls).toEqual(['get stuck', 'get mem', 'returner mem a']);
  });

  it('once closing, calls no returner: later returns and calls still queued record a retryable returner.failed', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const calls: string[] = [];
    const appended: LedgerEvent[] = [];
    const rc = new ReturnerCalls({
      source: () => memorySource(calls, gate),
      append: async (_s, event) => void appended.push(event),
      log: pino({ level: 'silent' }),
      concurrency: 1,
    });
    const one = { ...job, ret: 'mem', minions: ['a'] };
    // given a call in flight (held by the gate) and one waiting for the only slot
    rc.schedule(one, stored('a'));
    rc.schedule(one, stored('b'));
    // when closing gives up waiting for them, and a job returns after that
    expect(await rc.close(50)).toBe(false);
    rc.schedule(one, stored('c'));
    open();
    expect(await rc.settled(5_000)).toBe(true);
    // then only the call already in flight reached a returner
    expect(calls.filter((c) => c.startsWith('get'))).toEqual(['get mem alt {"k":1}']);
    expect(calls.filter((c) => c.startsWith('returner')).map((c) => c.split(' ')[1])).toEqual(['a']);
    expect(
      appended
        .map((e) => e.data as { id: string; returner: string; retryable: boolean; error: string })
        .map((d) => [d.id, d.returner, d.retryable, d.error])
        .sort(),
    ).toEqual(['b', 'c'].map((id) => [id, 'mem', true, "'mem' not called: the agent is stopping (the return is stored in the ledger)"]));
  });
});
