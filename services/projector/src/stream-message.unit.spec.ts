import { headers } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { toRawMessage } from './signatures.js';

describe('a message read by sequence to fill a gap', () => {
  it('gets the time a consumer gives the same message, so its rows equal a rebuild’s', () => {
    // 100 ns below a millisecond: the stored header says …123, a consumer (nats.js) …124.
    const ns = '1796687801123999900';
    const consumed = new Date(Math.floor(parseInt(ns, 10) / 1_000_000));
    const stored = {
      seq: 4817,
      subject: 'ledger.job.20261208003640377121.proc.ZmF1bHQtMDc0',
      data: new Uint8Array([123, 125]),
      header: headers(),
      timestamp: '2026-12-07T23:56:41.123999900Z',
      time: new Date(Date.parse('2026-12-07T23:56:41.123999900Z')),
    };
    expect(stored.time.getTime()).toBe(consumed.getTime() - 1);
    expect(toRawMessage(stored).time).toEqual(consumed);
    // A consumed message keeps its own time.
    expect(toRawMessage({ ...stored, header: undefined, headers: headers() }).time).toEqual(stored.time);
  });
});
