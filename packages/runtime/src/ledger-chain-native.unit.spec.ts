import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHAIN_ZERO, chainNext, chainOver } from '@jobledger/core';
import { nativeChainNext } from './ledger-chain-native.js';

describe('the native chain step', () => {
  it('gives the values of core’s definition, for any previous value, sequence, subject and body', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.nat(),
        fc.string({ unit: 'binary' }),
        fc.uint8Array({ maxLength: 2000 }),
        (prev, seq, subject, data) => {
          const previous = Buffer.from(prev).toString('hex');
          expect(nativeChainNext(previous, { seq, subject, data })).toBe(chainNext(previous, { seq, subject, data }));
        },
      ),
      { numRuns: 300 },
    );
    const links = [1, 2, 3].map((seq) => ({ seq, subject: `ledger.job.${seq}.new`, data: new TextEncoder().encode(`{"n":${seq}}`) }));
    expect(chainOver(CHAIN_ZERO, links, nativeChainNext)).toBe(chainOver(CHAIN_ZERO, links));
  });

  it('refuses what core refuses', () => {
    expect(() => nativeChainNext('xyz', { seq: 1, subject: 's', data: new Uint8Array() })).toThrow(RangeError);
    expect(() => nativeChainNext(CHAIN_ZERO, { seq: -1, subject: 's', data: new Uint8Array() })).toThrow(RangeError);
  });
});
