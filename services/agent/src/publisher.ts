import { setTimeout as delay } from 'node:timers/promises';
import type { JetStreamClient, PubAck } from '@nats-io/jetstream';
import { ClosedConnectionError, DrainingConnectionError, InvalidArgumentError } from '@nats-io/transport-node';
import { isStorageFull, type EventSigner, type Logger } from '@jobledger/runtime';
import { Limiter } from './limiter.js';

export interface PublisherOptions {
  /** Publishes awaiting their ack at once. */
  window: number;
  /** How long a publish keeps retrying transient failures before it gives up. A store that is
   *  full is waited for without a limit: the return of a job that ran must not be lost to it. */
  retryForMs: number;
  /**
   * Is the message at `seq` the last one on `subject`? Asked when the server says a publish
   * is a duplicate: another user may have sent a message on its own subject with our
   * `Nats-Msg-Id` first, which must not swallow ours.
   */
  storedOn?: (subject: string, seq: number) => Promise<boolean>;
  /** Signs every event with the agent's key (core's `auth/event-signature.ts`). */
  signer?: EventSigner | undefined;
}

function retryable(err: unknown): boolean {
  return !(err instanceof ClosedConnectionError || err instanceof DrainingConnectionError || err instanceof InvalidArgumentError);
}

/**
 * Appends to the ledger with a bounded window of outstanding publishes. Every publish carries
 * its deterministic `Nats-Msg-Id`, so a retry after a lost ack is stored once.
 */
export class Publisher {
  private readonly window: Limiter;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly js: JetStreamClient,
    private readonly log: Logger,
    private readonly opts: PublisherOptions = { window: 1024, retryForMs: 60_000 },
  ) {
    this.window = new Limiter(opts.window);
  }

  publish(subject: string, body: Uint8Array, msgID: string): Promise<PubAck> {
    const p = this.send(subject, body, msgID);
    this.pending.add(p);
    const forget = () => this.pending.delete(p);
    p.then(forget, forget);
    return p;
  }

  /** Waits for every publish started so far (successful or not). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private async send(subject: string, body: Uint8Array, msgID: string): Promise<PubAck> {
    const release = await this.window.acquire();
    try {
      const deadline = Date.now() + this.opts.retryForMs;
      const h = this.opts.signer?.headers(subject, body);
      for (let attempt = 1; ; attempt++) {
        try {
          const ack = await this.js.publish(subject, body, { msgID, ...(h ? { headers: h } : {}) });
          if (!ack.duplicate || !this.opts.storedOn || (await this.opts.storedOn(subject, ack.seq))) return ack;
          // Pre-empted: the id was taken by a message on another subject. Ours is stored under a new one.
          this.log.warn(
            { subject, msgID, seq: ack.seq },
            'the message id was taken by a message on another subject; publishing under a new one',
          );
          msgID = `${msgID}:${ack.seq}`;
          continue;
        } catch (err) {
          const full = isStorageFull(err);
          if (!retryable(err) || (!full && Date.now() >= deadline)) throw err;
          const wait = Math.min(2_000, 50 * 2 ** Math.min(attempt, 6));
          // A full store may last: one line when it starts, then one every 30 attempts.
          if (!full || attempt % 30 === 1) {
            this.log.warn(
              { err, subject, msgID, attempt },
              full ? "the ledger's store is full; waiting for room" : 'publish failed, retrying',
            );
          }
          await delay(wait);
        }
      }
    } finally {
      release();
    }
  }
}
