import { describe, expect, it } from 'vitest';
import { CHAIN_ZERO, chainNext, chainOver } from './ledger-chain.js';

/*
 * Known answers: the definition computed with another sha256 (Node's crypto), e.g. for the first
 * link: sha256(32 zero bytes ‖ 00000000 00000001 ‖ 00000023 ‖ subject ‖ 00000018 ‖ body).
 */
const EXPECTED = [
  '867adc3efd12b35aba458b1f5679c46ea5d679b1cba133ef6c3797009c3218bb',
  'bbe3f7423f1f0aa5478bddbcad1ae9c90334ac5dbb69a9995ba061084c0dc5ec',
  'e075bd717da943886a357a84c862df4daa9d42abf4fc032eaa3196c0345eabe6',
];

describe('ledger hash chain', () => {
  const links = [
    { seq: 1, subject: 'ledger.job.20261126000000000000.new', data: new TextEncoder().encode('{"type":"job.published"}') },
    { seq: 2, subject: 'ledger.agent.web_2E1.start', data: new Uint8Array([0, 255, 1]) },
    { seq: 3, subject: 'ledger.job.x.ret.é', data: new Uint8Array() },
  ];

  it('is sha256(previous ‖ seq ‖ len ‖ subject ‖ len ‖ raw), from 64 zeros', () => {
    expect(CHAIN_ZERO).toBe('0'.repeat(64));
    let h = CHAIN_ZERO;
    for (const [i, l] of links.entries()) {
      h = chainNext(h, l);
      expect(h).toBe(EXPECTED[i]);
    }
    expect(chainOver(CHAIN_ZERO, links)).toBe(h);
  });

  it('changes with any byte, the sequence or where the subject ends', () => {
    const base = chainNext(CHAIN_ZERO, links[0]!);
    expect(chainNext(CHAIN_ZERO, { ...links[0]!, seq: 2 })).not.toBe(base);
    expect(chainNext(CHAIN_ZERO, { ...links[0]!, data: links[0]!.data.slice(1) })).not.toBe(base);
    expect(chainNext(CHAIN_ZERO, { seq: 1, subject: 'ab', data: new Uint8Array([99]) })).not.toBe(
      chainNext(CHAIN_ZERO, { seq: 1, subject: 'abc', data: new Uint8Array() }),
    );
  });

  it('refuses a previous value that is not 64 hex digits', () => {
    expect(() => chainNext('abc', links[0]!)).toThrow(RangeError);
  });
});
