import type { KeyEvent } from '../events/key.js';
import type { ParsedSubject } from '../subjects.js';

/**
 * Signed events: every event appended to the ledger carries its signer's public nkey and an
 * ed25519 signature over its subject and body, in two NATS headers. An agent signs with the
 * nkey it was accepted with; the master's services (dispatcher, keyserver, `key` commands)
 * sign with the master's event key. The projector and `audit verify` check each event against
 * the key that was valid for its author at its place in the stream — the master's key, or the
 * agent id's last `key.accepted` before it — so an event written by anyone else (with stolen
 * admin credentials, straight into the stream) is quarantined and named. Pure: the ed25519
 * work is handed in (runtime's `pki/event-signing.ts`).
 */

export const SIGNER_HEADER = 'Jobledger-Signer';
export const SIGNATURE_HEADER = 'Jobledger-Sig';

const encoder = new TextEncoder();
const PREFIX = encoder.encode('jobledger-event\n');

/** The bytes signed: a fixed prefix, the subject, a newline, the body. */
export function signedBytes(subject: string, body: Uint8Array): Uint8Array {
  const s = encoder.encode(subject + '\n');
  const out = new Uint8Array(PREFIX.length + s.length + body.length);
  out.set(PREFIX, 0);
  out.set(s, PREFIX.length);
  out.set(body, PREFIX.length + s.length);
  return out;
}

/** Checks one ed25519 signature (base64url) by a public nkey. */
export type VerifySignature = (publicKey: string, bytes: Uint8Array, signature: string) => boolean;

export type LedgerKeyState = 'accepted' | 'rejected' | 'deleted';

export interface LedgerKey {
  publicKey: string;
  state: LedgerKeyState;
  /** Sequence of the key event that set it. */
  seq: number;
}

const STATE_OF: Record<KeyEvent['type'], LedgerKeyState> = {
  'key.accepted': 'accepted',
  'key.rejected': 'rejected',
  'key.deleted': 'deleted',
};

/** The ids' key states as the key events up to some sequence left them. */
export class KeyBook {
  private readonly keys: Map<string, LedgerKey>;
  constructor(entries: Iterable<[string, LedgerKey]> = []) {
    this.keys = new Map(entries);
  }
  clone(): KeyBook {
    return new KeyBook(this.keys);
  }
  get(id: string): LedgerKey | undefined {
    return this.keys.get(id);
  }
  /** The id's accepted key, if it has one. */
  accepted(id: string): string | undefined {
    const k = this.keys.get(id);
    return k?.state === 'accepted' ? k.publicKey : undefined;
  }
  apply(event: KeyEvent, seq: number): void {
    const state = STATE_OF[event.type];
    const prev = this.keys.get(event.data.id);
    // Rejecting or deleting another key than the accepted one leaves the accepted one alone.
    if (state !== 'accepted' && prev?.state === 'accepted' && prev.publicKey !== event.data.pub) return;
    this.keys.set(event.data.id, { publicKey: event.data.pub, state, seq });
  }
  entries(): IterableIterator<[string, LedgerKey]> {
    return this.keys.entries();
  }
  get size(): number {
    return this.keys.size;
  }
}

export interface SignatureTrust {
  /** The master's event keys (public nkeys). */
  masterKeys: readonly string[];
  verify: VerifySignature;
}

export interface SignedMessage {
  subject: string;
  data: Uint8Array;
  signer?: string | undefined;
  signature?: string | undefined;
}

/** Who must have signed an event on this subject: the master, or an agent id. */
export function requiredSigner(subject: ParsedSubject): { master: true } | { agentId: string } {
  switch (subject.kind) {
    case 'job.ret':
    case 'job.proc':
    case 'job.returner':
    case 'agent.start':
      return { agentId: subject.agentId };
    default:
      return { master: true };
  }
}

/**
 * Why the message's signature is not to be trusted, or undefined when it is: the signer must be
 * the master (master subjects) or the id's accepted key in `book` (agent subjects), and the
 * signature must verify. The text is what the dead letter and `audit verify` show. `verified`
 * is the cryptographic check when it was made already (on worker threads, ahead of the batch):
 * `trust.verify` is then not called.
 */
export function signatureProblem(
  trust: SignatureTrust,
  book: KeyBook,
  m: SignedMessage,
  subject: ParsedSubject,
  verified?: boolean,
): string | undefined {
  if (!m.signer || !m.signature) return 'unsigned event (no Jobledger-Signer/Jobledger-Sig headers)';
  const who = requiredSigner(subject);
  if ('master' in who) {
    if (!trust.masterKeys.includes(m.signer)) return `signed by ${m.signer}, which is not the master's event key`;
  } else {
    const key = book.accepted(who.agentId);
    if (key === undefined) return `signed by ${m.signer}, but '${who.agentId}' has no accepted key at this point of the ledger`;
    if (key !== m.signer) return `signed by ${m.signer}, which is not the accepted key of '${who.agentId}'`;
  }
  let ok = verified;
  if (ok === undefined) {
    try {
      ok = trust.verify(m.signer, signedBytes(m.subject, m.data), m.signature);
    } catch {
      ok = false;
    }
  }
  return ok ? undefined : `bad signature by ${m.signer}`;
}
