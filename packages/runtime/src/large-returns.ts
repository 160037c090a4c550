import { Objm, type ObjectStore } from '@nats-io/obj';
import { decodeEvent, inlineReturn, RETURNS_BUCKET, returnObjectName, type JobReturnedData, type ReturnObject } from '@jobledger/core';
import type { NatsConnection } from '@nats-io/transport-node';

/** What reading and writing large returns needs of a ledger connection. */
export type ReturnsConnection = { nc: NatsConnection };

/**
 * Returns too large for one stream message (Salt has no limit; NATS has `max_payload`, 1 MB by
 * default) go to the JetStream object store bucket `ledger_returns`; the `job.returned` event
 * names the object instead of carrying the return. The object store checks its SHA-256 digest
 * on every read, so a stored return cannot change unseen. Readers of returns (the projector, a
 * replay, the returner feeds, `jobledger run`) put the value back with `resolveReturn`.
 */

/** The referenced object is missing or does not match its reference (not retryable). */
export class ReturnObjectError extends Error {
  override readonly name = 'ReturnObjectError';
  readonly retryable = false;
}

const encoder = new TextEncoder();
const RETURN_OBJECT_KEY = Buffer.from('"return_object"');
const decoder = new TextDecoder();
const stores = new WeakMap<NatsConnection, Promise<ObjectStore>>();

/** The bucket of large returns (created when missing), one handle per ledger connection. */
export function returnsStore(ledger: ReturnsConnection): Promise<ObjectStore> {
  let s = stores.get(ledger.nc);
  if (!s) {
    s = new Objm(ledger.nc).create(RETURNS_BUCKET, { storage: 'file' });
    s.catch(() => stores.delete(ledger.nc));
    stores.set(ledger.nc, s);
  }
  return s;
}

/** Stores an agent's return for a job; the reference goes into its `job.returned` event. */
export async function storeReturn(ledger: ReturnsConnection, jid: string, id: string, value: unknown): Promise<ReturnObject> {
  const store = await returnsStore(ledger);
  const name = returnObjectName(jid, id);
  const info = await store.putBlob({ name }, encoder.encode(JSON.stringify(value ?? null)));
  return { bucket: RETURNS_BUCKET, name, size: info.size, digest: info.digest };
}

/** The return data with its stored return in place; data without `return_object` as it is. */
export async function resolveReturn(ledger: ReturnsConnection, data: JobReturnedData): Promise<JobReturnedData> {
  const ref = data.return_object;
  if (ref === undefined) return data;
  const store = ref.bucket === RETURNS_BUCKET ? await returnsStore(ledger) : await new Objm(ledger.nc).open(ref.bucket);
  const info = await store.info(ref.name);
  if (info === null || info.deleted) throw new ReturnObjectError(`the return object ${ref.bucket}/${ref.name} is missing`);
  if (info.digest !== ref.digest || info.size !== ref.size) {
    throw new ReturnObjectError(
      `the return object ${ref.bucket}/${ref.name} does not match its reference (${info.size} bytes, ${info.digest})`,
    );
  }
  const bytes = await store.getBlob(ref.name);
  if (bytes === null) throw new ReturnObjectError(`the return object ${ref.bucket}/${ref.name} is missing`);
  return inlineReturn(data, JSON.parse(decoder.decode(bytes)));
}

/**
 * A stream message body with its large return put back (the same envelope, re-encoded), for
 * code that reads raw bodies. Bodies without a `return_object` come back unchanged (same bytes).
 */
export async function resolveReturnBody(ledger: ReturnsConnection, body: Uint8Array): Promise<Uint8Array> {
  // Every message the projector applies comes through here: a byte search, no decoding, for the rest.
  if (Buffer.from(body.buffer, body.byteOffset, body.byteLength).indexOf(RETURN_OBJECT_KEY) < 0) return body;
  let event;
  try {
    event = decodeEvent(body);
  } catch {
    return body; // invalid: the projection dead-letters it as it is
  }
  if (event.type !== 'job.returned' || event.data.return_object === undefined) return body;
  // The data is in the current shape (decodeEvent upcast it): no schema version.
  const { v: _v, ...envelope } = JSON.parse(decoder.decode(body)) as Record<string, unknown>;
  return encoder.encode(JSON.stringify({ ...envelope, data: await resolveReturn(ledger, event.data) }));
}
