import { DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { Ledger } from '@jobledger/runtime';
import type { RawMessage } from './projections.js';

/**
 * Reads the ledger stream in order from a sequence, through an ordered consumer (no state on
 * the server beyond its life), for rebuilds. `take` never waits for a message that is not
 * in the stream: callers ask only up to a sequence the stream holds (it never deletes).
 */
export class StreamCursor {
  private readonly messages: ConsumerMessages;
  private readonly iterator: AsyncIterator<JsMsg>;
  private pending: RawMessage | undefined;
  private constructor(messages: ConsumerMessages) {
    this.messages = messages;
    this.iterator = messages[Symbol.asyncIterator]();
  }

  static async open(ledger: Ledger, fromSeq: number, opts: { bufferMessages?: number } = {}): Promise<StreamCursor> {
    const consumer = await ledger.js.consumers.get(ledger.stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSeq),
    });
    const messages = await consumer.consume({ max_messages: opts.bufferMessages ?? 2_000 });
    return new StreamCursor(messages);
  }

  /** The next messages in order, at most `max`, none above `upTo`; waits for at least one. */
  async take(max: number, upTo: number): Promise<RawMessage[]> {
    const out: RawMessage[] = [];
    while (out.length < max) {
      let m = this.pending;
      this.pending = undefined;
      if (m === undefined) {
        const r = await this.iterator.next();
        if (r.done) throw new Error('the stream reader ended before reaching sequence ' + upTo);
        m = { seq: r.value.seq, subject: r.value.subject, data: r.value.data, time: r.value.time };
      }
      if (m.seq > upTo) {
        this.pending = m;
        break;
      }
      out.push(m);
      if (m.seq === upTo) break;
    }
    return out;
  }

  /** Stops the consumer. Messages it buffered are dropped (its close settles only once they are read). */
  async close(): Promise<void> {
    const closed = this.messages.close().catch(() => undefined);
    await this.iterator.return?.();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 1_000).unref())]);
  }
}

/** The stream's first and last sequences. */
export async function streamBounds(ledger: Ledger): Promise<{ first: number; last: number }> {
  const info = await ledger.jsm.streams.info(ledger.stream);
  return { first: info.state.first_seq, last: info.state.last_seq };
}

/**
 * The first sequence whose message the stream stored at or after `since` (the stream's times
 * only grow with the sequence): a binary search of direct reads. `last + 1` when none.
 */
export async function firstSeqSince(ledger: Ledger, since: Date): Promise<number> {
  let { first: lo, last: hi } = await streamBounds(ledger);
  if (hi < lo) return hi + 1;
  let answer = hi + 1;
  while (lo <= hi) {
    const mid = Math.floor((lo + hi) / 2);
    const m = await ledger.jsm.streams.getMessage(ledger.stream, { seq: mid });
    if (m === null || m.time.getTime() >= since.getTime()) {
      if (m !== null) answer = mid;
      hi = mid - 1;
    } else {
      lo = mid + 1;
    }
  }
  return answer;
}
