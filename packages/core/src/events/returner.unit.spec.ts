import { describe, expect, it } from 'vitest';
import { msgIds, parseSubject, subjects } from '../subjects.js';
import { decodeEvent, encodeEvent, jobPublishedData, type LedgerEvent } from './index.js';
import { returnerFailedTag, type ReturnerFailedData } from './returner.js';

const JID = '20261125181415937764';
const ID = '192.168.153.141';
const failed: ReturnerFailedData = {
  jid: JID,
  id: ID,
  returner: 'no_such_returner',
  error: "'no_such_returner.returner' is not available.",
  retryable: false,
  _stamp: '2026-11-25T18:14:16.001234',
};

describe('returner.failed', () => {
  it('round-trips with its tag, subject and msg id', () => {
    const event: LedgerEvent = { type: 'returner.failed', tag: returnerFailedTag(JID, ID), data: failed };
    expect(decodeEvent(encodeEvent(event))).toEqual(event);
    expect(event.tag).toBe(`salt/job/${JID}/returner/${ID}`);
    expect(subjects.jobReturner(JID, ID)).toBe(`ledger.job.${JID}.returner.192_2E168_2E153_2E141`);
    expect(parseSubject(subjects.jobReturner(JID, ID))).toEqual({ kind: 'job.returner', jid: JID, agentId: ID });
    expect(msgIds.returnerFailed(JID, ID, 'pgjsonb')).toBe(`${JID}:returner:${ID}:pgjsonb`);
  });

  it('lives under the job, but not where its returns are read', () => {
    const subject = subjects.jobReturner(JID, ID);
    expect(subject.startsWith(`ledger.job.${JID}.`)).toBe(true);
    expect(subject.split('.')[3]).not.toBe('ret');
  });

  it('refuses a missing returner name, a non-boolean retryable and a bad jid', () => {
    const bad = (data: unknown) => () => encodeEvent({ type: 'returner.failed', tag: returnerFailedTag(JID, ID), data } as LedgerEvent);
    expect(bad({ ...failed, returner: '' })).toThrow();
    expect(bad({ ...failed, retryable: 'no' })).toThrow();
    expect(bad({ ...failed, jid: 'x' })).toThrow();
    const { error: _e, ...noError } = failed;
    expect(bad(noError)).toThrow();
  });
});

describe('job.published ret_config / ret_kwargs', () => {
  const base = {
    jid: JID,
    tgt: '*',
    tgt_type: 'glob',
    user: 'root',
    fun: 'test.ping',
    arg: [],
    minions: ['a'],
    missing: [],
    ret: 'rawfile_json',
    _stamp: '2026-11-25T18:14:15.937764',
  };

  it("are optional, as in Salt's publish load", () => {
    expect(jobPublishedData.parse(base)).not.toHaveProperty('ret_config');
    expect(jobPublishedData.parse({ ...base, ret_config: 'alt', ret_kwargs: { filename: '/x' } })).toMatchObject({
      ret_config: 'alt',
      ret_kwargs: { filename: '/x' },
    });
    expect(() => jobPublishedData.parse({ ...base, ret_kwargs: 'filename=/x' })).toThrow();
  });
});
