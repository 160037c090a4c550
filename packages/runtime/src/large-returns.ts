import { Objm, type ObjectStore } from '@nats-io/obj';
import { decodeEvent, inlineReturn, RETURNS_BUCKET, returnObjectName, type JobReturnedData, type ReturnObject } from '@jobledger/core';
import { createHash, randomBytes } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';

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

/** The bucket of large returns (created when missing, with `replicas`), one handle per ledger connection. */
export function returnsStore(ledger: ReturnsConnection, replicas = 1): Promise<ObjectStore> {
  let s = stores.get(ledger.nc);
  if (!s) {
    s = new Objm(ledger.nc).create(RETURNS_BUCKET, { storage: 'file', replicas });
    s.catch(() => stores.delete(ledger.nc));
    stores.set(ledger.nc, s);
  }
  return s;
}

/** Chunk size of stored returns (the object store's default). */
const CHUNK = 128 * 1024;

/** Base64url with padding, as the object store writes names into subjects and digests. */
function paddedBase64url(bytes: Uint8Array): string {
  const b = Buffer.from(bytes).toString('base64url');
  return b + '='.repeat((4 - (b.length % 4)) % 4);
}

/**
 * Stores an agent's return for a job; the reference goes into its `job.returned` event. The object
 * is written in the object store's own format (chunks, then the meta message that rolls up any
 * earlier one) by plain publishes: nats.js's `put` reads the bucket first, and agents may not
 * read it (other agents' returns are in it). Chunk ids and the name's nonce are random, so no
 * other agent can aim at them.
 */
export async function storeReturn(ledger: ReturnsConnection, jid: string, id: string, value: unknown): Promise<ReturnObject> {
  const js = jetstream(ledger.nc);
  const bytes = encoder.encode(JSON.stringify(value ?? null));
  const name = returnObjectName(jid, id, randomBytes(12).toString('base64url'));
  const chunkId = randomBytes(16).toString('base64url');
  const max = Math.min(CHUNK, ledger.nc.info?.max_payload ?? CHUNK);
  const sha = createHash('sha256');
  let chunks = 0;
  for (let at = 0; at < bytes.length; at += max) {
    const chunk = bytes.subarray(at, at + max);
    sha.update(chunk);
    try {
      await js.publish(`$O.${RETURNS_BUCKET}.C.${chunkId}`, chunk, { msgID: `${chunkId}:${chunks}` });
    } catch (err) {
      // No stream answers for the subject: the bucket is missing (nats.js says "jetstream is not enabled").
      if (chunks === 0 && err instanceof Error && /not enabled|no responders/i.test(err.message)) {
        throw new ReturnObjectError(`the object store bucket ${RETURNS_BUCKET} does not exist (the master makes it when it starts)`, {
          cause: err,
        });
      }
      throw err;
    }
    chunks++;
  }
  const digest = `SHA-256=${paddedBase64url(sha.digest())}`;
  const meta = {
    name,
    description: '',
    options: { max_chunk_size: max },
    bucket: RETURNS_BUCKET,
    nuid: chunkId,
    size: bytes.length,
    chunks,
    mtime: new Date().toISOString(),
    digest,
    deleted: false,
  };
  const h = headers();
  h.set('Nats-Rollup', 'sub');
  await js.publish(`$O.${RETURNS_BUCKET}.M.${paddedBase64url(encoder.encode(name))}`, JSON.stringify(meta), {
    headers: h,
    msgID: `${chunkId}:meta`,
  });
  return { bucket: RETURNS_BUCKET, name, size: bytes.length, digest };
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
