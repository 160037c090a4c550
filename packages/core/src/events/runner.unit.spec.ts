import { describe, expect, it } from 'vitest';
import { chunkBody, joinChunks, runnerReply, runnerRequest } from '../api/runner.js';
import { msgIds, parseSubject, subjects } from '../subjects.js';
import { decodeEvent, encodeEvent, type LedgerEvent } from './index.js';
import { runnerFunArgs, runnerJobLoad, runnerPublishedTag, runnerReturnedTag, type RunnerReturnedData } from './runner.js';

const JID = '20261125181415937764';
const ret: RunnerReturnedData = {
  fun: 'runner.jobs.list_jobs',
  jid: JID,
  user: 'root',
  fun_args: [{ search_function: 'cmd.*' }],
  _stamp: '2026-11-25T18:14:16.001234',
  return: { '20261125181400000001': { Function: 'cmd.run' } },
  success: true,
};

describe('runner events', () => {
  it('round-trip with Salt’s tags, subjects and msg ids', () => {
    const published: LedgerEvent = {
      type: 'runner.published',
      tag: runnerPublishedTag(JID),
      data: { fun: ret.fun, jid: JID, user: 'root', fun_args: ret.fun_args, _stamp: '2026-11-25T18:14:15.937764' },
    };
    const returned: LedgerEvent = { type: 'runner.returned', tag: runnerReturnedTag(JID), data: ret };
    expect(decodeEvent(encodeEvent(published))).toEqual(published);
    expect(decodeEvent(encodeEvent(returned))).toEqual(returned);
    expect(published.tag).toBe(`salt/run/${JID}/new`);
    expect(returned.tag).toBe(`salt/run/${JID}/ret`);
    expect(parseSubject(subjects.runNew(JID))).toEqual({ kind: 'run.new', jid: JID });
    expect(parseSubject(subjects.runRet(JID))).toEqual({ kind: 'run.ret', jid: JID });
    expect([msgIds.runNew(JID), msgIds.runRet(JID)]).toEqual([`${JID}:run:new`, `${JID}:run:ret`]);
  });

  it('refuses a fun outside runner.* and a missing success', () => {
    const bad = (data: unknown) => () => encodeEvent({ type: 'runner.returned', tag: runnerReturnedTag(JID), data } as LedgerEvent);
    expect(bad({ ...ret, fun: 'jobs.list_jobs' })).toThrow();
    const { success: _s, ...noSuccess } = ret;
    expect(bad(noSuccess)).toThrow();
  });

  it("fun_args are Salt's list(args) + [kwargs]", () => {
    expect(runnerFunArgs(['J'], {})).toEqual(['J']);
    expect(runnerFunArgs(['J'], { missing: true })).toEqual(['J', { missing: true }]);
  });

  it('the job cache load: the master as id and target, the runner dict as return', () => {
    expect(runnerJobLoad('m_master', ret)).toEqual({
      id: 'm_master',
      tgt: 'm_master',
      jid: JID,
      return: ret,
      fun: 'runner.jobs.list_jobs',
      user: 'root',
      success: true,
    });
  });
});

describe('runner API contract', () => {
  it('defaults and limits', () => {
    expect(runnerRequest.parse({ fun: 'jobs.active' })).toEqual({ fun: 'jobs.active', arg: [], kwarg: {}, user: 'UNKNOWN' });
    expect(runnerRequest.safeParse({ fun: 'x'.repeat(44) }).success).toBe(false);
    expect(runnerReply.parse({ jid: JID, return: {}, success: true, retcode: 0 })).toEqual({
      jid: JID,
      return: {},
      success: true,
      retcode: 0,
    });
  });

  it('chunks a body and joins it back', () => {
    const body = new TextEncoder().encode('x'.repeat(10_001));
    const chunks = chunkBody(body, 1000);
    expect(chunks.length).toBe(11);
    expect(chunks.every((c) => c.length <= 1000)).toBe(true);
    expect(joinChunks(chunks)).toEqual(body);
    expect(chunkBody(new Uint8Array(0), 10)).toEqual([new Uint8Array(0)]);
  });
});
