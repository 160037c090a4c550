import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import {
  decodeAgentId,
  decodeEvent,
  encodeEvent,
  isKeyEvent,
  KEY_ACTS,
  KEY_TAG,
  msgIds,
  saltStamp,
  subjects,
  type KeyEvent,
  type KeyEventType,
} from '@jobledger/core';
import type { EventSigner } from '../event-signing.js';
import type { Logger } from '../logger.js';
import type { Ledger } from '../nats.js';
import type { KeyStore } from './key-store.js';

/**
 * Keeps the ledger's key events (`key.accepted`, `key.rejected`, `key.deleted` on
 * `ledger.key.<id>`) in step with the master's key store: what the store says of an id is
 * appended, signed with the master's event key, when the id's last key event says otherwise.
 * Run before a key can be used (the keyserver, before it hands an agent its credentials; `up`,
 * before its agents start) and after it stopped being valid (`key reject|delete`), so the
 * ledger knows of a key before the first event signed with it. Appending is conditional on the
 * id's last key event (`expect.lastSubjectSequence`): two masters syncing at once append once.
 */

export class KeyEventError extends Error {
  override readonly name = 'KeyEventError';
  readonly retryable = true;
}

interface LastKeyEvent {
  seq: number;
  event: KeyEvent | undefined;
}

async function lastKeyEvent(ledger: Ledger, id: string): Promise<LastKeyEvent> {
  let m;
  try {
    m = await ledger.jsm.direct.getMessage(ledger.stream, { last_by_subj: subjects.key(id) });
  } catch (err) {
    if (err instanceof Error && /no message found/i.test(err.message)) return { seq: 0, event: undefined };
    throw err;
  }
  if (m === null) return { seq: 0, event: undefined };
  try {
    const event = decodeEvent(m.data);
    return { seq: m.seq, event: isKeyEvent(event) ? event : undefined };
  } catch {
    return { seq: m.seq, event: undefined };
  }
}

/** The key event the store asks for after `last`, if any. */
function wanted(store: KeyStore, id: string, last: KeyEvent | undefined): { type: KeyEventType; pub: string } | undefined {
  const rec = store.get(id);
  if (rec?.state === 'accepted') {
    return last?.type === 'key.accepted' && last.data.pub === rec.publicKey ? undefined : { type: 'key.accepted', pub: rec.publicKey };
  }
  if (rec?.state === 'rejected') {
    return last?.type === 'key.rejected' && last.data.pub === rec.publicKey ? undefined : { type: 'key.rejected', pub: rec.publicKey };
  }
  // Pending or gone: only an accepted key needs its end recorded.
  return last?.type === 'key.accepted' ? { type: 'key.deleted', pub: last.data.pub } : undefined;
}

/** The ids the ledger has key events for. */
async function ledgerKeyIds(ledger: Ledger): Promise<string[]> {
  const info = await ledger.jsm.streams.info(ledger.stream, { subjects_filter: subjects.allKeys });
  const out: string[] = [];
  for (const subject of Object.keys(info.state.subjects ?? {})) {
    try {
      out.push(decodeAgentId(subject.slice('ledger.key.'.length)));
    } catch {
      // Not one of ours: nothing to sync.
    }
  }
  return out;
}

/** Appends what is missing for `ids` (all the store's and the ledger's ids when omitted); returns the events appended. */
export async function syncKeyEvents(
  ledger: Ledger,
  store: KeyStore,
  signer: EventSigner,
  opts: { ids?: readonly string[]; log?: Logger } = {},
): Promise<number> {
  let ids = opts.ids;
  if (ids === undefined) {
    const listing = store.list();
    ids = [...new Set([...listing.accepted, ...listing.rejected, ...listing.pending, ...(await ledgerKeyIds(ledger))])];
  }
  let appended = 0;
  for (const id of ids) {
    for (let attempt = 1; ; attempt++) {
      const last = await lastKeyEvent(ledger, id);
      const want = wanted(store, id, last.event);
      if (want === undefined) break;
      const event = {
        type: want.type,
        tag: KEY_TAG,
        data: { id, act: KEY_ACTS[want.type], result: true, pub: want.pub, _stamp: saltStamp() },
      } as KeyEvent;
      const subject = subjects.key(id);
      const body = encodeEvent(event);
      try {
        await ledger.js.publish(subject, body, {
          msgID: msgIds.key(id, KEY_ACTS[want.type], want.pub, last.seq),
          expect: { lastSubjectSequence: last.seq, streamName: ledger.stream },
          headers: signer.headers(subject, body),
        });
        appended++;
        opts.log?.info({ agent: id, event: want.type }, 'key event appended');
        break;
      } catch (err) {
        // Another master appended for this id meanwhile: look again.
        if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence && attempt < 5) continue;
        throw new KeyEventError(`appending ${want.type} for '${id}' failed: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  return appended;
}
