import { DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { messageSignature, type Ledger } from '@jobledger/runtime';
import type { RawMessage } from './projections.js';

/**
 * Reads the ledger stream in order from a sequence, through an ordered consumer (no state on
 * the server beyond its life), for rebuilds. Callers ask only up to a sequence the stream
 * holds (it never deletes; see `checkBeyondStream`); a reader that receives nothing for
 * `idleTimeoutMs` all the same fails with StreamReadError instead of waiting for ever.
 */
/** The stream cannot give what a rebuild needs (a checkpoint beyond its end, a reader gone quiet). */
export class StreamReadError extends Error {
  override readonly name = 'StreamReadError';
  readonly retryable: boolean;
  constructor(message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.retryable = options.retryable ?? false;
  }
}

/** How long `take` waits for the next message before giving up (default). */
export const CURSOR_IDLE_TIMEOUT_MS = 30_000;

export class StreamCursor {
  private readonly messages: ConsumerMessages;
  private readonly idleTimeoutMs: number;
  private readonly iterator: AsyncIterator<JsMsg>;
  private pending: RawMessage | undefined;
  private constructor(messages: ConsumerMessages, idleTimeoutMs: number) {
    this.messages = messages;
    this.idleTimeoutMs = idleTimeoutMs;
    this.iterator = messages[Symbol.asyncIterator]();
  }

  static async open(
    ledger: Ledger,
    fromSeq: number,
    opts: { bufferMessages?: number; idleTimeoutMs?: number } = {},
  ): Promise<StreamCursor> {
    const consumer = await ledger.js.consumers.get(ledger.stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSeq),
    });
    const messages = await consumer.consume({ max_messages: opts.bufferMessages ?? 2_000 });
    return new StreamCursor(messages, opts.idleTimeoutMs ?? CURSOR_IDLE_TIMEOUT_MS);
  }

  /** The next messages in order, at most `max`, none above `upTo`; waits for at least one. */
  async take(max: number, upTo: number): Promise<RawMessage[]> {
    const out: RawMessage[] = [];
    while (out.length < max) {
      let m = this.pending;
      this.pending = undefined;
      if (m === undefined) {
        const r = await this.next(upTo);
        if (r.done) throw new StreamReadError(`the stream reader ended before reaching sequence ${upTo}`, { retryable: true });
        m = { seq: r.value.seq, subject: r.value.subject, data: r.value.data, time: r.value.time, ...messageSignature(r.value.headers) };
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

  /** The iterator's next message, or StreamReadError after idleTimeoutMs without one (the cursor is then unusable). */
  private async next(upTo: number): Promise<IteratorResult<JsMsg>> {
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new StreamReadError(
              `no message from the stream for ${Math.round(this.idleTimeoutMs / 100) / 10} s while reading up to sequence ${upTo}`,
              { retryable: true },
            ),
          ),
        this.idleTimeoutMs,
      );
    });
    try {
      return await Promise.race([this.iterator.next(), idle]);
    } finally {
      clearTimeout(timer);
    }
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

/** `<what> N is beyond the last sequence M of stream S: is JOBLEDGER_STREAM right?` */
export function beyondStreamError(stream: string, seq: number, last: number, what = 'the live checkpoint'): StreamReadError {
  return new StreamReadError(`${what} ${seq} is beyond the last sequence ${last} of stream ${stream}: is JOBLEDGER_STREAM right?`);
}

/**
 * Fails with StreamReadError when `seq` (a checkpoint to reach) is beyond the stream's last
 * sequence — a stream recreated, or JOBLEDGER_STREAM naming another one: reading up to it
 * would wait for ever. Returns that last sequence.
 */
export async function checkBeyondStream(ledger: Ledger, seq: number, what = 'the live checkpoint'): Promise<number> {
  const { last } = await streamBounds(ledger);
  if (seq > last) throw beyondStreamError(ledger.stream, seq, last, what);
  return last;
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
