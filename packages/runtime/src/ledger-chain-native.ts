import crypto from 'node:crypto';
import type { ChainLink, ChainStep } from '@jobledger/core';

/**
 * Core's ledger hash chain step (`chainNext`, its definition is in core's `ledger-chain.ts`)
 * with node's native SHA-256: the projector, replays and `audit verify` extend the chain over
 * every message, and core's portable JavaScript hash took 12 µs a message where this takes 3.
 * A unit test holds the two to the same values.
 */
export const nativeChainNext: ChainStep = (previous: string, link: ChainLink): string => {
  if (!/^[0-9a-f]{64}$/.test(previous)) throw new RangeError(`not a chain value: ${JSON.stringify(previous)}`);
  if (!Number.isSafeInteger(link.seq) || link.seq < 0)
    throw new RangeError(`stream sequence ${link.seq} is not a non-negative safe integer`);
  const subjectBytes = Buffer.byteLength(link.subject, 'utf8');
  // previous (32) ‖ seq (8) ‖ len(subject) (4) ‖ subject ‖ len(raw) (4)
  const head = Buffer.allocUnsafe(44 + subjectBytes + 4);
  head.write(previous, 0, 32, 'hex');
  head.writeBigUInt64BE(BigInt(link.seq), 32);
  head.writeUInt32BE(subjectBytes, 40);
  head.write(link.subject, 44, subjectBytes, 'utf8');
  head.writeUInt32BE(link.data.length, 44 + subjectBytes);
  return crypto.createHash('sha256').update(head).update(link.data).digest('hex');
};
