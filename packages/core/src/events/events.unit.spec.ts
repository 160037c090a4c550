import { describe, expect, it } from 'vitest';
import { EventValidationError, decodeEvent, encodeEvent, jobReturnedTag, type LedgerEvent } from './index.js';

const ret: LedgerEvent = {
  type: 'job.returned',
  tag: jobReturnedTag('20190724155612509222', '192.168.153.141'),
  data: {
    cmd: '_return',
    id: '192.168.153.141',
    jid: '20190724155612509222',
    fun: 'test.ping',
    fun_args: [],
    return: true,
    retcode: 0,
    success: true,
    user: 'root',
    _stamp: '2019-07-24T15:56:12.612345',
  },
};

describe('event envelope', () => {
  it('round-trips a valid event and keeps unknown Salt fields', () => {
    const withExtra = { ...ret, data: { ...ret.data, out: 'nested', extra: 1 } } as LedgerEvent;
    expect(decodeEvent(encodeEvent(withExtra))).toEqual(withExtra);
  });

  it('rejects bytes that are not JSON, and JSON that is not an event, saying why', () => {
    expect(() => decodeEvent(new TextEncoder().encode('{oops'))).toThrow(EventValidationError);
    expect(() => decodeEvent(new Uint8Array([0xff, 0xfe]))).toThrow(/not a JSON document/);
    const bad = JSON.stringify({ ...ret, data: { ...ret.data, jid: 'nope' } });
    expect(() => decodeEvent(new TextEncoder().encode(bad))).toThrow(/jid/);
    expect(() => decodeEvent(new TextEncoder().encode('{"type":"job.exploded","tag":"x","data":{}}'))).toThrow(EventValidationError);
  });

  it('refuses to encode an invalid event', () => {
    expect(() => encodeEvent({ ...ret, data: { ...ret.data, retcode: 1.5 } })).toThrow();
  });
});
