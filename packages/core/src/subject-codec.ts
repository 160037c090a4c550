/**
 * Reversible encoding of an agent id into one NATS subject token (also a valid JetStream
 * KV key and consumer-name fragment).
 *
 * `A-Z a-z 0-9 -` stay as they are; every other UTF-8 byte (including `_`, the escape
 * character itself, `.`, `*`, `>`, spaces) becomes `_` followed by two upper-case hex
 * digits. Because `_` never stands for itself, decoding is unambiguous and different ids
 * never share a token: `192.168.153.141` → `192_2E168_2E153_2E141`.
 */

const PLAIN = /^[A-Za-z0-9-]$/;
const TOKEN = /^(?:[A-Za-z0-9-]|_[0-9A-F]{2})+$/;

export class InvalidAgentIdError extends Error {
  override readonly name = 'InvalidAgentIdError';
  readonly retryable = false;
}

export function encodeAgentId(id: string): string {
  if (id.length === 0) throw new InvalidAgentIdError('an agent id cannot be empty');
  let out = '';
  for (const ch of id) {
    if (PLAIN.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of new TextEncoder().encode(ch)) {
      out += '_' + byte.toString(16).toUpperCase().padStart(2, '0');
    }
  }
  return out;
}

export function decodeAgentId(token: string): string {
  if (!TOKEN.test(token)) throw new InvalidAgentIdError(`not an encoded agent id: ${token}`);
  const bytes: number[] = [];
  for (let i = 0; i < token.length;) {
    if (token[i] === '_') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(token.charCodeAt(i));
      i += 1;
    }
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(bytes));
}
