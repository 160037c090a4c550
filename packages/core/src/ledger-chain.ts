import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';

/**
 * The ledger's hash chain: one value after every stream message the projector applied (events
 * and dead letters alike), so the read models can be tied to the exact bytes of the stream.
 *
 *   h_0 = 64 zeros (32 zero bytes)
 *   h_n = sha256(h_{n-1} ‖ seq ‖ len(subject) ‖ subject ‖ len(raw) ‖ raw)
 *
 * `h_{n-1}` is its 32 bytes, `seq` the stream sequence as an unsigned 64-bit big-endian integer,
 * the lengths unsigned 32-bit big-endian byte counts (so no two messages give the same input),
 * `subject` its UTF-8 bytes and `raw` the message body as stored. Values are lower-case hex.
 */

export const CHAIN_ZERO = '0'.repeat(64);

/** One message as the chain sees it. */
export interface ChainLink {
  seq: number;
  subject: string;
  data: Uint8Array;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
}

function u64(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`stream sequence ${n} is not a non-negative safe integer`);
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), false);
  return b;
}

/** The chain value after `link`, from the value `previous` (hex) before it. */
export function chainNext(previous: string, link: ChainLink): string {
  if (!/^[0-9a-f]{64}$/.test(previous)) throw new RangeError(`not a chain value: ${JSON.stringify(previous)}`);
  const subject = utf8ToBytes(link.subject);
  const h = sha256.create();
  h.update(hexToBytes(previous));
  h.update(u64(link.seq));
  h.update(u32(subject.length));
  h.update(subject);
  h.update(u32(link.data.length));
  h.update(link.data);
  return bytesToHex(h.digest());
}

/** One step of the chain: `chainNext`, or an implementation of the same definition (runtime's, with node's native SHA-256). */
export type ChainStep = (previous: string, link: ChainLink) => string;

/** The chain value after every link, in order, from `previous`. */
export function chainOver(previous: string, links: Iterable<ChainLink>, step: ChainStep = chainNext): string {
  let h = previous;
  for (const link of links) h = step(h, link);
  return h;
}
