import { describe, expect, it } from 'vitest';
import { EventValidationError, decodeEvent, encodeEvent, jobReturnedTag, type LedgerEvent } from './index.js';
import { EventVersionError, currentEventVersion, upcastEnvelope, withCurrentVersion, type Upcaster } from './upcast.js';

const JID = '20261125181415937764';
const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** A return load in version 0: no `success` (and here no `retcode` either). */
const v0 = (over: Record<string, unknown> = {}) => ({
  v: 0,
  type: 'job.returned',
  tag: jobReturnedTag(JID, 'web1'),
  data: {
    cmd: '_return',
    id: 'web1',
    jid: JID,
    fun: 'cmd.run',
    fun_args: ['false'],
    return: '',
    user: 'root',
    _stamp: '2026-11-25T18:14:16.001234',
    ...over,
  },
});

describe('decodeEvent upcasts old versions', () => {
  it('reads a version-0 return as version 1: success is retcode == 0, a missing retcode is 0', () => {
    const failed = decodeEvent(bytes(v0({ retcode: 1 })));
    expect(failed.type).toBe('job.returned');
    expect(failed).not.toHaveProperty('v');
    expect(failed.data).toMatchObject({ retcode: 1, success: false });

    expect(decodeEvent(bytes(v0())).data).toMatchObject({ retcode: 0, success: true });
  });

  it('gives the same event as the version-1 body it stands for', () => {
    const current: LedgerEvent = {
      type: 'job.returned',
      tag: jobReturnedTag(JID, 'web1'),
      data: { ...v0({ retcode: 2 }).data, retcode: 2, success: false, cmd: '_return' } as never,
    };
    expect(decodeEvent(bytes(v0({ retcode: 2 })))).toEqual(decodeEvent(encodeEvent(current)));
  });

  it('keeps an explicit success of a version-0 body', () => {
    expect(decodeEvent(bytes(v0({ retcode: 0, success: false }))).data).toMatchObject({ success: false });
  });

  it('reads version 1 with or without an explicit v', () => {
    const { v: _v, ...plain } = v0({ retcode: 0, success: true });
    expect(decodeEvent(bytes({ ...plain, v: 1 }))).toEqual(decodeEvent(bytes(plain)));
  });

  it('refuses a newer version, a version that is not a whole number, and one with no upcaster', () => {
    const { v: _v, ...plain } = v0({ retcode: 0, success: true });
    expect(() => decodeEvent(bytes({ ...plain, v: 2 }))).toThrow(EventValidationError);
    expect(() => decodeEvent(bytes({ ...plain, v: 2 }))).toThrow(/version 2 of job.returned is newer than this jobledger reads \(1\)/);
    expect(() => decodeEvent(bytes({ ...plain, v: '0' }))).toThrow(/version "0" of job.returned is not a whole number/);
    expect(() => decodeEvent(bytes({ ...plain, v: 1.5 }))).toThrow(EventValidationError);
    const ping = { v: 0, type: 'proc.started', tag: 'x', data: {} };
    expect(() => decodeEvent(bytes(ping))).toThrow(/no upcaster from version 0 of proc.started/);
  });

  it('still validates after upcasting: a version-0 body missing its jid is refused', () => {
    const { jid: _jid, ...data } = v0().data;
    expect(() => decodeEvent(bytes({ ...v0(), data }))).toThrow(/jid/);
  });
});

describe('upcastEnvelope', () => {
  it('applies one step per version, in order', () => {
    const seen: number[] = [];
    const step =
      (n: number): Upcaster =>
      (e) => {
        seen.push(n);
        return { ...e, data: { ...(e.data as object), [`step${n}`]: true } };
      };
    const out = upcastEnvelope({ v: 0, type: 't', tag: 'x', data: {} }, { t: { 0: step(0), 1: step(1), 2: step(2) } }, () => 3);
    expect(seen).toEqual([0, 1, 2]);
    expect(out).toEqual({ type: 't', tag: 'x', data: { step0: true, step1: true, step2: true } });
  });

  it('leaves what is not an envelope to validation', () => {
    expect(upcastEnvelope([1, 2])).toEqual([1, 2]);
    expect(upcastEnvelope({ type: 3 })).toEqual({ type: 3 });
    expect(() => upcastEnvelope({ type: 'job.returned', v: -1 })).toThrow(EventVersionError);
  });
});

describe('encodeEvent writes the current version', () => {
  it('writes no v for a type at version 1, so version-1 bytes are unchanged', () => {
    const ev = decodeEvent(bytes(v0({ retcode: 0 })));
    const text = new TextDecoder().decode(encodeEvent(ev));
    expect(currentEventVersion('job.returned')).toBe(1);
    expect(JSON.parse(text)).not.toHaveProperty('v');
    expect(text.startsWith('{"type":"job.returned"')).toBe(true);
  });

  it('writes v first for a type above version 1', () => {
    const v2 = (t: string) => (t === 'job.returned' ? 2 : 1);
    expect(JSON.stringify(withCurrentVersion({ type: 'job.returned', tag: 't' }, v2))).toBe('{"v":2,"type":"job.returned","tag":"t"}');
    expect(withCurrentVersion({ type: 'proc.started' }, v2)).toEqual({ type: 'proc.started' });
    expect(currentEventVersion('no.such.type')).toBe(1);
  });
});
