import type pg from 'pg';
import type { MsgHdrs } from '@nats-io/transport-node';
import { messageSignature, storedMessageTime, type Ledger, type SignatureWorkers } from '@jobledger/runtime';
import {
  signedBytes,
  subjects,
  decodeEvent,
  isKeyEvent,
  KeyBook,
  parseSubject,
  signatureProblem,
  type LedgerKeyState,
  type SignatureTrust,
} from '@jobledger/core';
import type { DeadLetter, RawMessage } from './projections.js';

/**
 * The projector's side of signed events (core's `auth/event-signature.ts`): every message of a
 * batch is checked, in stream order, against the key valid for its author at its sequence — the
 * master's event key, or the agent id's accepted key as the key events before it left it. What
 * fails is a dead letter (`signature: …`), never a row. The key book is `agent_keys` as of the
 * checkpoint, kept in memory between batches and reloaded when the checkpoint is not the one it
 * was kept at (a rollback, another projector, a replay's own schema).
 */
export class SignatureCheck {
  private cached: { seq: number; book: KeyBook } | undefined;
  /** The cryptographic check of messages `precheck` sent to the workers. */
  private readonly verified = new WeakMap<RawMessage, boolean>();

  constructor(
    readonly trust: SignatureTrust,
    /** Told of each message quarantined for its signature (once per transaction that checks it). */
    private readonly onProblem?: (letter: DeadLetter) => void,
    /** Where `precheck` verifies; without them every signature is verified in `check`. */
    private readonly workers?: SignatureWorkers,
  ) {}

  /**
   * Verifies the messages' signatures on the worker threads ahead of `check` (which then only
   * decides, in stream order, whether the signer was the right key). Never fails: a message
   * the workers could not answer for is verified by `check` itself.
   */
  async precheck(messages: readonly RawMessage[]): Promise<void> {
    if (this.workers === undefined) return;
    const signed = messages.filter((m) => m.signer !== undefined && m.signature !== undefined);
    try {
      const ok = await this.workers.verify(
        signed.map((m) => ({ signer: m.signer!, bytes: signedBytes(m.subject, m.data), signature: m.signature! })),
      );
      signed.forEach((m, i) => this.verified.set(m, ok[i] === true));
    } catch {
      // Verified in check, on this thread.
    }
  }

  /** The key book at checkpoint `seq` (a copy, for one transaction to change). */
  async bookAt(client: pg.ClientBase, seq: number): Promise<KeyBook> {
    if (this.cached?.seq === seq) return this.cached.book.clone();
    const { rows } = await client.query<{ id: string; public_key: string; state: LedgerKeyState; seq: string }>(
      'SELECT id, public_key, state, seq FROM agent_keys',
    );
    return new KeyBook(rows.map((r) => [r.id, { publicKey: r.public_key, state: r.state, seq: Number(r.seq) }]));
  }

  /** After the transaction that moved the checkpoint to `seq` committed. */
  committed(seq: number, book: KeyBook): void {
    this.cached = { seq, book };
  }

  /** Splits messages (in stream order) into the trusted ones and dead letters, updating `book` with the trusted key events. */
  check(messages: readonly RawMessage[], book: KeyBook): { trusted: RawMessage[]; letters: DeadLetter[] } {
    const trusted: RawMessage[] = [];
    const letters: DeadLetter[] = [];
    for (const m of messages) {
      const subject = parseSubject(m.subject);
      // Not one of our subjects: planBatch makes it a dead letter with that reason.
      if (subject === undefined) {
        trusted.push(m);
        continue;
      }
      const problem = signatureProblem(this.trust, book, m, subject, this.verified.get(m));
      if (problem !== undefined) {
        const letter = { seq: m.seq, subject: m.subject, time: m.time, raw: m.data, error: `signature: ${problem}` };
        letters.push(letter);
        this.onProblem?.(letter);
        continue;
      }
      if (subject.kind === 'key') {
        try {
          const event = decodeEvent(m.data);
          if (isKeyEvent(event) && event.data.id === subject.agentId) book.apply(event, m.seq);
        } catch {
          // Invalid: planBatch makes it a dead letter.
        }
      }
      trusted.push(m);
    }
    return { trusted, letters };
  }
}

/**
 * The key book just before sequence `beforeSeq`, from the stream's own key events (a partial
 * rebuild starts with it): each checked as the projector checks it.
 */
export async function keyBookFromStream(ledger: Ledger, trust: SignatureTrust, beforeSeq: number): Promise<KeyBook> {
  const book = new KeyBook();
  const check = new SignatureCheck(trust);
  for (let seq = 1; seq < beforeSeq;) {
    const m = await ledger.jsm.direct.getMessage(ledger.stream, { seq, next_by_subj: subjects.allKeys }).catch((err: unknown) => {
      if (err instanceof Error && /no message found/i.test(err.message)) return null;
      throw err;
    });
    if (m === null || m.seq >= beforeSeq) break;
    check.check([toRawMessage(m)], book);
    seq = m.seq + 1;
  }
  return book;
}

/** Writes a key book into `agent_keys` (a partial rebuild's schema, before its first batch). */
export async function writeKeyBook(db: pg.Pool | pg.ClientBase, book: KeyBook): Promise<void> {
  for (const [id, k] of book.entries()) {
    await db.query('INSERT INTO agent_keys (id, public_key, state, seq, changed_at) VALUES ($1, $2, $3, $4, now())', [
      id,
      k.publicKey,
      k.state,
      k.seq,
    ]);
  }
}

/** A stored message (`header`, `timestamp`) or a consumed one (`headers`) as the projector takes it. */
export type StreamMessage = {
  seq: number;
  subject: string;
  data: Uint8Array;
  time: Date;
  /** A stored message's RFC 3339 time (nanoseconds). */
  timestamp?: string;
  header?: MsgHdrs | undefined;
  headers?: MsgHdrs | undefined;
};

/**
 * A stored message gets the time a consumer would have given it (runtime's `storedMessageTime`):
 * the rows of a message read to fill a gap equal those of a rebuild, which consumes it.
 */
export function toRawMessage(m: StreamMessage): RawMessage {
  const time = m.header !== undefined && m.timestamp !== undefined ? storedMessageTime(m.timestamp) : m.time;
  return { seq: m.seq, subject: m.subject, data: m.data, time, ...messageSignature(m.header ?? m.headers) };
}
