import { createRequire } from 'node:module';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { cachedPublicKeyBytes } from './event-signing.js';

/**
 * Event signatures checked on worker threads, in batches: a replay or a projector checks every
 * event of the ledger (42-50 µs each with libsodium, a third of a replay's time on the main
 * thread), and while the main thread plans and writes one batch the workers check the next.
 * The answer is only the cryptographic check (does this key sign these bytes); which key an
 * event must be signed with stays core's `signatureProblem`, in stream order.
 *
 * The worker's source is inline (the CLI runs from a bundle, where a worker file beside the
 * module would not be found) and loads sodium-native by the path resolved here.
 */

export interface SignedItem {
  /** The signer's public nkey. */
  signer: string;
  /** What was signed (core's `signedBytes`). */
  bytes: Uint8Array;
  /** base64url, as the header carries it. */
  signature: string;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const na = require(workerData.sodium);
parentPort.on('message', ({ id, keys, sigs, msgs }) => {
  const out = new Uint8Array(msgs.length);
  for (let i = 0; i < msgs.length; i++) {
    const sig = sigs[i];
    out[i] = sig.length === na.crypto_sign_BYTES && na.crypto_sign_verify_detached(sig, msgs[i], keys[i]) ? 1 : 0;
  }
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

export class SignatureWorkerError extends Error {
  override readonly name = 'SignatureWorkerError';
  readonly retryable = true;
}

interface Pending {
  resolve(out: Uint8Array): void;
  reject(err: Error): void;
}

/** A small pool of verifying threads (one per core but one, at least one). */
export class SignatureWorkers {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private turn = 0;
  private broken: Error | undefined;

  constructor(threads = Math.max(1, os.availableParallelism() - 1)) {
    const sodium = createRequire(import.meta.url).resolve('sodium-native');
    for (let i = 0; i < threads; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { sodium } });
      w.unref();
      w.on('message', ({ id, out }: { id: number; out: Uint8Array }) => {
        const p = this.pending.get(id);
        this.pending.delete(id);
        p?.resolve(out);
      });
      w.on('error', (err) => this.fail(new SignatureWorkerError(`signature worker failed: ${err.message}`, { cause: err })));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new SignatureWorkerError(`signature worker exited with code ${code}`));
      });
      this.workers.push(w);
    }
  }

  private fail(err: Error): void {
    this.broken ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** One boolean per item: true when `signer` signed `bytes` with `signature`. */
  async verify(items: readonly SignedItem[]): Promise<boolean[]> {
    if (items.length === 0) return [];
    if (this.broken) throw this.broken;
    const keys: Uint8Array[] = [];
    const sigs: Uint8Array[] = [];
    const msgs: Uint8Array[] = [];
    const valid: boolean[] = [];
    for (const it of items) {
      try {
        const key = cachedPublicKeyBytes(it.signer);
        keys.push(key);
        sigs.push(Buffer.from(it.signature, 'base64url'));
        msgs.push(it.bytes);
        valid.push(true);
      } catch {
        // Not an nkey: not a valid signature, nothing to send.
        valid.push(false);
      }
    }
    // Cut in one chunk per worker, so that all of them work on the batch.
    const chunk = Math.ceil(msgs.length / this.workers.length);
    const parts: Promise<Uint8Array>[] = [];
    for (let from = 0; from < msgs.length; from += chunk) {
      const to = Math.min(msgs.length, from + chunk);
      parts.push(this.send(keys.slice(from, to), sigs.slice(from, to), msgs.slice(from, to)));
    }
    const results = (await Promise.all(parts)).flatMap((u) => [...u]);
    let k = 0;
    return valid.map((v) => v && results[k++] === 1);
  }

  private send(keys: Uint8Array[], sigs: Uint8Array[], msgs: Uint8Array[]): Promise<Uint8Array> {
    const id = this.nextId++;
    const w = this.workers[this.turn++ % this.workers.length]!;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, keys, sigs, msgs });
    });
  }

  async close(): Promise<void> {
    this.fail(new SignatureWorkerError('signature workers closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
