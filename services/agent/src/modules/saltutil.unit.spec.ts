import { describe, expect, it } from 'vitest';
import { execute } from '../execute.js';
import { functionNames, ProcessSignalledError, type ExecContext, type JobControl, type ProcRecord, type SignalResult } from './index.js';

const SELF = '20260101000000000001';
const SLEEP = '20260101000000000002';
const CMD = '20260101000000000003';
const GONE = '20260101000000000004';

function record(jid: string, fun: string, pid: number, arg: unknown[] = []): ProcRecord {
  return { pid, fun, arg, tgt: 'm1', jid, ret: '', tgt_type: 'glob', user: 'root' };
}

/** An id running the asking job, a test.sleep inside the agent and a cmd.run child; GONE died meanwhile. */
class Jobs implements JobControl {
  readonly sent: Array<[string, number]> = [];
  readonly records = [
    record(SELF, 'saltutil.running', 100),
    record(SLEEP, 'test.sleep', 100, [30]),
    record(CMD, 'cmd.run', 4242, ['sleep 1000']),
  ];
  async running(): Promise<ProcRecord[]> {
    return this.records.map((r) => ({ ...r }));
  }
  async find(jid: string): Promise<ProcRecord | undefined> {
    return this.records.find((r) => r.jid === jid);
  }
  async signal(jid: string, signal: number): Promise<SignalResult> {
    if (jid === GONE) return { kind: 'not-running' };
    const r = await this.find(jid);
    if (!r) return { kind: 'unknown' };
    this.sent.push([jid, signal]);
    return { kind: 'sent', pid: r.pid };
  }
}

function ctx(jobs: JobControl): ExecContext {
  return { id: 'm1', jid: SELF, grains: { id: 'm1' }, signal: new AbortController().signal, spawned: () => undefined, functionNames, jobs };
}

async function run(fun: string, arg: unknown[], jobs = new Jobs()) {
  return { outcome: await execute(fun, arg, ctx(jobs)), jobs };
}

describe('saltutil', () => {
  it('running lists every live job of the id but the one asking, as Salt proc dicts', async () => {
    const { outcome } = await run('saltutil.running', []);
    expect(outcome).toEqual({
      kind: 'returned',
      retcode: 0,
      return: [
        { pid: 100, fun: 'test.sleep', arg: [30], tgt: 'm1', jid: SLEEP, ret: '', tgt_type: 'glob', user: 'root' },
        { pid: 4242, fun: 'cmd.run', arg: ['sleep 1000'], tgt: 'm1', jid: CMD, ret: '', tgt_type: 'glob', user: 'root' },
      ],
    });
  });

  it('is_running keeps the jobs whose fun matches the glob', async () => {
    const ret = async (pattern: string) => {
      const { outcome } = await run('saltutil.is_running', [pattern]);
      return outcome.kind === 'returned' ? (outcome.return as ProcRecord[]).map((r) => r.jid) : outcome;
    };
    expect(await ret('cmd.*')).toEqual([CMD]);
    expect(await ret('test.sleep')).toEqual([SLEEP]);
    expect(await ret('*')).toEqual([SLEEP, CMD]);
    expect(await ret('saltutil.*')).toEqual([]);
    expect(await ret('CMD.*')).toEqual([]);
  });

  it('find_job gives the proc dict of a running job, {} for any other jid (and for itself)', async () => {
    expect((await run('saltutil.find_job', [CMD])).outcome).toMatchObject({
      kind: 'returned',
      retcode: 0,
      return: { jid: CMD, pid: 4242 },
    });
    expect((await run('saltutil.find_job', ['20260101000000000099'])).outcome).toEqual({ kind: 'returned', retcode: 0, return: {} });
    expect((await run('saltutil.find_job', [SELF])).outcome).toEqual({ kind: 'returned', retcode: 0, return: {} });
  });

  it("kill_job, term_job and signal_job return Salt's texts", async () => {
    const { outcome, jobs } = await run('saltutil.kill_job', [CMD]);
    expect(outcome).toEqual({ kind: 'returned', retcode: 0, return: `Signal 9 sent to job ${CMD} at pid 4242` });
    expect(jobs.sent).toEqual([[CMD, 9]]);
    expect((await run('saltutil.term_job', [SLEEP])).outcome).toMatchObject({ return: `Signal 15 sent to job ${SLEEP} at pid 100` });
    expect((await run('saltutil.signal_job', [CMD, 'SIGHUP'])).outcome).toMatchObject({
      return: `Signal 1 sent to job ${CMD} at pid 4242`,
    });
    expect((await run('saltutil.signal_job', [CMD, 'TERM'])).outcome).toMatchObject({ return: `Signal 15 sent to job ${CMD} at pid 4242` });
    expect((await run('saltutil.signal_job', [CMD, 2])).outcome).toMatchObject({ return: `Signal 2 sent to job ${CMD} at pid 4242` });
    expect((await run('saltutil.kill_job', [GONE])).outcome).toMatchObject({
      return: `Job ${GONE} was not running and job data has been cleaned up`,
    });
    expect((await run('saltutil.kill_job', ['20260101000000000099'])).outcome).toMatchObject({ retcode: 0, return: '' });
  });

  it('a job never signals itself', async () => {
    const { outcome, jobs } = await run('saltutil.kill_job', [SELF]);
    expect(outcome).toMatchObject({ retcode: 0, return: '' });
    expect(jobs.sent).toEqual([]);
  });

  it('term_all_jobs / kill_all_jobs signal every other job and list the texts', async () => {
    const { outcome, jobs } = await run('saltutil.kill_all_jobs', []);
    expect(outcome).toMatchObject({
      retcode: 0,
      return: [`Signal 9 sent to job ${SLEEP} at pid 100`, `Signal 9 sent to job ${CMD} at pid 4242`],
    });
    expect(jobs.sent).toEqual([
      [SLEEP, 9],
      [CMD, 9],
    ]);
    expect((await run('saltutil.term_all_jobs', [])).outcome).toMatchObject({
      return: [`Signal 15 sent to job ${SLEEP} at pid 100`, `Signal 15 sent to job ${CMD} at pid 4242`],
    });
  });

  it('an invalid signal or a missing argument is an error return', async () => {
    expect((await run('saltutil.signal_job', [CMD, 'SIGFOO'])).outcome).toEqual({
      kind: 'returned',
      retcode: 1,
      out: 'nested',
      return: "ERROR: Invalid signal: 'SIGFOO'",
    });
    expect((await run('saltutil.kill_job', [])).outcome).toMatchObject({
      retcode: 1,
      return: "Passed invalid arguments to saltutil.kill_job: kill_job() missing 1 required positional argument: 'jid'",
    });
  });

  it('find_cached_job says the agent keeps no job cache', async () => {
    expect((await run('saltutil.find_cached_job', [CMD])).outcome).toMatchObject({
      retcode: 0,
      return: 'Local jobs cache directory not found; you may need to enable cache_jobs on this minion',
    });
  });
});

describe('a job inside the agent that is killed', () => {
  const killed = async (fun: string, arg: unknown[], reason?: unknown) => {
    const abort = new AbortController();
    const outcome = execute(fun, arg, { ...ctx(new Jobs()), signal: abort.signal });
    abort.abort(reason);
    return outcome;
  };

  it('ends with the signal it was killed with, and no return', async () => {
    expect(await killed('test.sleep', [30], new ProcessSignalledError(9))).toEqual({ kind: 'signalled', signal: 9 });
    expect(await killed('test.sleep', [30], new ProcessSignalledError(1))).toEqual({ kind: 'signalled', signal: 1 });
  });

  it('a cancel (no signal given) is SIGTERM', async () => {
    expect(await killed('test.sleep', [30])).toEqual({ kind: 'signalled', signal: 15 });
  });

  it('what the function returns after it was killed is dropped', async () => {
    // test.ping ignores the abort signal and resolves right away, after the kill.
    expect(await killed('test.ping', [], new ProcessSignalledError(9))).toEqual({ kind: 'signalled', signal: 9 });
  });
});
