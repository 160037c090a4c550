import { describe, expect, it } from 'vitest';
import { encodeEvent, jobReturnedTag, procTag, subjects } from '@jobledger/core';
import { decodeMessage, mergeProc, planBatch, safeText, type ProcRow, type RawMessage } from './projections.js';

const jid = '20260102030405123456';
const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const ret = (id: string, extra: Record<string, unknown> = {}) => ({
  type: 'job.returned',
  tag: jobReturnedTag(jid, id),
  data: {
    cmd: '_return',
    id,
    jid,
    fun: 'test.ping',
    fun_args: [],
    return: true,
    retcode: 0,
    success: true,
    user: 'root',
    _stamp: '2026-01-02T03:04:05.123456',
    ...extra,
  },
});
const msg = (seq: number, subject: string, data: Uint8Array): RawMessage => ({
  seq,
  subject,
  data,
  time: new Date(Date.UTC(2026, 0, 2, 3, 4, seq)),
});

describe('decodeMessage', () => {
  it('accepts an event on its own subject', () => {
    const d = decodeMessage(msg(1, subjects.jobRet(jid, 'web 1'), encodeEvent(ret('web 1') as never)));
    expect(d).toMatchObject({ ok: true, seq: 1 });
  });

  it.each([
    ['a subject that is not the ledger’s', 'other.thing', enc(ret('a')), /not a ledger event subject/],
    ['bytes that are not UTF-8', subjects.jobRet(jid, 'a'), new Uint8Array([0xc3, 0x28]), /^not a JSON document/],
    ['JSON that is not an event', subjects.jobRet(jid, 'a'), enc({ type: 'job.returned', data: {} }), /^invalid event/],
    ['an event of another kind than its subject', subjects.jobNew(jid), enc(ret('a')), /a job\.returned event on a job\.new subject/],
    [
      'another jid than its subject',
      subjects.jobRet('20260102030405999999', 'a'),
      enc(ret('a')),
      /jid "20260102030405123456" in the event/,
    ],
    ['another agent than its subject', subjects.jobRet(jid, 'b'), enc(ret('a')), /agent id "a" in the event, "b" in the subject/],
  ])('rejects %s', (_what, subject, body, error) => {
    const d = decodeMessage(msg(7, subject, body));
    expect(d.ok).toBe(false);
    if (!d.ok) {
      expect(d.error).toMatch(error);
      expect(d.raw).toBe(body);
    }
  });
});

describe('planBatch', () => {
  it('is one statement per table, rows as one JSON parameter', () => {
    const messages = [1, 2, 3].map((i) => msg(i, subjects.jobRet(jid, `m${i}`), encodeEvent(ret(`m${i}`) as never)));
    const plan = planBatch([...messages, msg(4, 'ledger.job.x.ret.y', enc({}))], { masterId: 'mm' });
    expect(plan.events).toBe(3);
    expect(plan.deadLetters.map((d) => d.seq)).toEqual([4]);
    expect(plan.statements.map((s) => s.name)).toEqual(['dead_letters', 'salt_events', 'salt_returns', 'jobs']);
    for (const s of plan.statements) expect(typeof s.values[0]).toBe('string');
    const jobs = JSON.parse(plan.statements[3]!.values[0] as string);
    expect(jobs).toEqual([expect.objectContaining({ jid, returned: 3, failed: 0, end_time: '2026-01-02T03:04:03.000Z' })]);
    expect(plan.statements[1]!.values[1]).toBe('mm');
  });

  it('splits the rows of large events over several statements of at most ~8 MB of JSON', () => {
    const big = 'x'.repeat(900_000);
    const messages = Array.from({ length: 20 }, (_, i) =>
      msg(i + 1, subjects.jobRet(jid, `m${i}`), encodeEvent(ret(`m${i}`, { return: big }) as never)),
    );
    const plan = planBatch(messages, { masterId: 'm' });
    const returns = plan.statements.filter((s) => s.name === 'salt_returns');
    expect(returns.length).toBeGreaterThan(2);
    expect(returns.flatMap((s) => JSON.parse(s.values[0] as string) as { r: { id: string } }[]).map((row) => row.r.id)).toEqual(
      messages.map((_, i) => `m${i}`),
    );
    for (const s of plan.statements) expect((s.values[0] as string).length).toBeLessThan(9 * 1024 * 1024);
  });

  it('folds the events of one process in stream order', () => {
    const p = (what: 'started' | 'signalled' | 'ended', seq: number, extra = {}) =>
      msg(
        seq,
        subjects.jobProc(jid, 'a'),
        encodeEvent({
          type: `proc.${what}`,
          tag: procTag(jid, 'a', what),
          data: { jid, id: 'a', fun: 'f', pid: 9, _stamp: '2026-01-02T03:04:05', ...extra },
        } as never),
      );
    const plan = planBatch([p('started', 1), p('signalled', 2, { signal: 15 }), p('ended', 3, { outcome: 'signalled', signal: 15 })], {
      masterId: 'm',
    });
    const procs = JSON.parse(plan.statements.find((s) => s.name === 'procs')!.values[0] as string);
    expect(procs).toEqual([
      {
        jid,
        id: 'a',
        fun: 'f',
        pid: 9,
        state: 'ended',
        outcome: 'signalled',
        signal: 15,
        retcode: null,
        started_at: '2026-01-02T03:04:01.000Z',
        ended_at: '2026-01-02T03:04:03.000Z',
      },
    ]);
  });
});

describe('mergeProc', () => {
  const row = (over: Partial<ProcRow>): ProcRow => ({
    jid,
    id: 'a',
    fun: 'f',
    pid: 1,
    state: 'running',
    outcome: null,
    signal: null,
    retcode: null,
    started_at: null,
    ended_at: null,
    ...over,
  });
  it('never moves the state backwards and keeps what a later event does not say', () => {
    const ended = row({ state: 'ended', outcome: 'returned', retcode: 0, ended_at: new Date(2) });
    const started = row({ state: 'running', started_at: new Date(1) });
    expect(mergeProc(ended, started)).toEqual({ ...ended, started_at: new Date(1) });
    expect(mergeProc(started, ended)).toEqual({ ...ended, started_at: new Date(1) });
  });
});

describe('safeText', () => {
  it('replaces NUL and lone surrogates, keeps pairs', () => {
    expect(safeText('a\u0000b\uD800c\uDC00d😀')).toBe('a\uFFFDb\uFFFDc\uFFFDd😀');
  });
});
