import { nuid } from '@nats-io/transport-node';
import { encodeEvent, msgIds, PUBLISH_DENIED_TAG, subjects, type PublishDeniedData } from '@jobledger/core';
import type { EventSigner } from './event-signing.js';
import type { Ledger } from './nats.js';

/**
 * Appends a refused call to the ledger as a `publish.denied` event, signed with the master's
 * event key when one is given: Salt only logs a refusal, the ledger keeps it. Returns the
 * event's stream sequence.
 */
export async function appendPublishDenied(ledger: Ledger, signer: EventSigner | undefined, data: PublishDeniedData): Promise<number> {
  const body = encodeEvent({ type: 'publish.denied', tag: PUBLISH_DENIED_TAG, data });
  const ack = await ledger.js.publish(subjects.publishDenied, body, {
    msgID: msgIds.publishDenied(nuid.next()),
    ...(signer ? { headers: signer.headers(subjects.publishDenied, body) } : {}),
  });
  return ack.seq;
}
