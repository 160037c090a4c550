import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fromSeed } from '@nats-io/nkeys';
import { headers, type MsgHdrs } from '@nats-io/transport-node';
import { SIGNATURE_HEADER, SIGNER_HEADER, signedBytes, type SignatureTrust, type VerifySignature } from '@jobledger/core';

/**
 * The ed25519 side of core's signed events (an nkey is an ed25519 key: its seed is the private
 * key's 32 bytes, its public key the public key's 32 bytes in base32). Signing and checking are
 * libsodium's (sodium-native): on this hardware it verifies in 42 µs and signs in 16 µs where
 * node's OpenSSL takes 95 and 34, and the projector checks every event of the ledger.
 */

/** The part of sodium-native used here (its own typings are for older major versions). */
interface Sodium {
  crypto_sign_BYTES: number;
  crypto_sign_SECRETKEYBYTES: number;
  crypto_sign_PUBLICKEYBYTES: number;
  crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void;
  crypto_sign_detached(sig: Uint8Array, message: Uint8Array, sk: Uint8Array): void;
  crypto_sign_verify_detached(sig: Uint8Array, message: Uint8Array, pk: Uint8Array): boolean;
}

let sodiumModule: Sodium | undefined;
/** Loaded on first use (20 ms): a command that neither signs nor checks does not pay for it. */
function sodium(): Sodium {
  return (sodiumModule ??= createRequire(import.meta.url)('sodium-native') as Sodium);
}

const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export class SigningKeyError extends Error {
  override readonly name = 'SigningKeyError';
  readonly retryable = false;
}

function base32Bytes(text: string): number[] {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of text) {
    const v = BASE32.indexOf(ch);
    if (v < 0) throw new SigningKeyError(`not an nkey: ${text.slice(0, 4)}…`);
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return out;
}

/** The 32 raw key bytes of a public nkey (base32 of prefix byte, key, crc16). */
export function nkeyPublicBytes(publicKey: string): Uint8Array {
  const out = base32Bytes(publicKey);
  if (out.length !== 35) throw new SigningKeyError(`not an nkey: ${publicKey.slice(0, 60)}`);
  return Uint8Array.from(out.slice(1, 33));
}

/** The 32 raw ed25519 seed bytes of an nkey seed (base32 of two prefix bytes, seed, crc16). */
function nkeySeedBytes(seed: string): Uint8Array {
  const out = base32Bytes(seed);
  if (out.length !== 36) throw new SigningKeyError('not an nkey seed');
  return Uint8Array.from(out.slice(2, 34));
}

/** The ed25519 private key of an nkey seed, as node's crypto holds it. */
export function nkeyPrivateKey(seed: string): crypto.KeyObject {
  return crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, nkeySeedBytes(seed.trim())]), format: 'der', type: 'pkcs8' });
}

/** The user nkey seed a NATS `.creds` file holds (undefined when it holds none). */
export function credsSeed(credsText: string): string | undefined {
  return /-----BEGIN USER NKEY SEED-----\s+(S[A-Z2-7]+)\s+------END USER NKEY SEED------/.exec(credsText)?.[1];
}

/** Signs events with one nkey. */
export class EventSigner {
  readonly publicKey: string;
  /** libsodium's 64-byte secret key: the seed, then the public key. */
  private readonly secretKey: Uint8Array;

  constructor(seed: string) {
    const kp = fromSeed(new TextEncoder().encode(seed.trim()));
    this.publicKey = kp.getPublicKey();
    const na = sodium();
    this.secretKey = new Uint8Array(na.crypto_sign_SECRETKEYBYTES);
    na.crypto_sign_seed_keypair(new Uint8Array(na.crypto_sign_PUBLICKEYBYTES), this.secretKey, nkeySeedBytes(seed.trim()));
  }

  sign(subject: string, body: Uint8Array): string {
    const na = sodium();
    const sig = Buffer.allocUnsafe(na.crypto_sign_BYTES);
    na.crypto_sign_detached(sig, signedBytes(subject, body), this.secretKey);
    return sig.toString('base64url');
  }

  /** The two signature headers, added to `h` (new headers when none). */
  headers(subject: string, body: Uint8Array, h: MsgHdrs = headers()): MsgHdrs {
    h.set(SIGNER_HEADER, this.publicKey);
    h.set(SIGNATURE_HEADER, this.sign(subject, body));
    return h;
  }
}

const publicKeys = new Map<string, Uint8Array>();

/** The 32 key bytes of a public nkey, kept for the next time it is asked. */
export function cachedPublicKeyBytes(publicKey: string): Uint8Array {
  let k = publicKeys.get(publicKey);
  if (k === undefined) {
    k = nkeyPublicBytes(publicKey);
    if (publicKeys.size > 100_000) publicKeys.clear();
    publicKeys.set(publicKey, k);
  }
  return k;
}

export const verifyEventSignature: VerifySignature = (publicKey, bytes, signature) => {
  const na = sodium();
  const sig = Buffer.from(signature, 'base64url');
  // libsodium asserts the length; a signature of another length is simply not valid.
  return sig.length === na.crypto_sign_BYTES && na.crypto_sign_verify_detached(sig, bytes, cachedPublicKeyBytes(publicKey));
};

/** The signer and signature a stored message carries. */
export function messageSignature(h: MsgHdrs | undefined): { signer?: string; signature?: string } {
  if (!h) return {};
  const signer = h.get(SIGNER_HEADER) || undefined;
  const signature = h.get(SIGNATURE_HEADER) || undefined;
  return { ...(signer ? { signer } : {}), ...(signature ? { signature } : {}) };
}

/** The master's event key: `<pki>/events.nk` (0600) and `<pki>/events.pub`. */
export function masterEventKeyFiles(pkiDir: string) {
  return { seed: path.join(pkiDir, 'events.nk'), publicKey: path.join(pkiDir, 'events.pub') };
}

function readIfThere(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The master's event signer, when this home has the master's event key. */
export function masterEventSigner(pkiDir: string): EventSigner | undefined {
  const seed = readIfThere(masterEventKeyFiles(pkiDir).seed);
  return seed === undefined ? undefined : new EventSigner(seed);
}

/** What the projector and `audit verify` trust, when this home has the master's event key. */
export function masterSignatureTrust(pkiDir: string): SignatureTrust | undefined {
  const pub = readIfThere(masterEventKeyFiles(pkiDir).publicKey);
  return pub === undefined ? undefined : { masterKeys: [pub], verify: verifyEventSignature };
}

/** A signer with the nkey seed of a NATS `.creds` file: the key the server authenticated. */
export function credsEventSigner(credsFile: string): EventSigner {
  const seed = credsSeed(fs.readFileSync(credsFile, 'utf8'));
  if (seed === undefined) throw new SigningKeyError(`${credsFile} holds no user nkey seed`);
  return new EventSigner(seed);
}
