import path from 'node:path';
import { createUser, fromPublic, fromSeed, type KeyPair } from '@nats-io/nkeys';
import { fmtCreds } from '@nats-io/jwt';
import { fingerprint } from '@jobledger/core';
import { readText, writeSecretFile } from './secret-files.js';

/**
 * An agent's identity: one nkey per agent home (Salt's `minion.pem`), made at first start; the
 * seed never leaves `<home>/pki/` (0600). Only its public key travels, in a signed request.
 */

export function agentPkiFiles(pkiDir: string) {
  return {
    seed: path.join(pkiDir, 'agent.nk'),
    publicKey: path.join(pkiDir, 'agent.pub'),
    creds: path.join(pkiDir, 'agent.creds'),
    masterCa: path.join(pkiDir, 'master_ca.pem'),
  };
}

export function loadOrCreateAgentKey(pkiDir: string): KeyPair {
  const f = agentPkiFiles(pkiDir);
  const seed = readText(f.seed);
  if (seed !== undefined) return fromSeed(new TextEncoder().encode(seed.trim()));
  const kp = createUser();
  writeSecretFile(f.seed, new TextDecoder().decode(kp.getSeed()) + '\n');
  writeSecretFile(f.publicKey, kp.getPublicKey() + '\n');
  return kp;
}

export function writeAgentCreds(pkiDir: string, jwt: string, kp: KeyPair): string {
  const file = agentPkiFiles(pkiDir).creds;
  writeSecretFile(file, fmtCreds(jwt, kp));
  return file;
}

/** Salt's key fingerprint of an nkey: SHA-256 of its 32 raw public key bytes, colon hex. */
export function nkeyFingerprint(publicKey: string): string {
  // The public key is base32 of (prefix byte, 32 key bytes, crc16).
  const raw = base32Decode(publicKey);
  return fingerprint(raw.slice(1, 33));
}

function base32Decode(s: string): Uint8Array {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of s) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`not an nkey: ${s.slice(0, 60)}`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return new Uint8Array(out);
}

/** What an agent sends to be accepted: its ids and key, signed with that key at a time. */
export interface AuthRequest {
  ids: string[];
  publicKey: string;
  /** Milliseconds since the epoch; the master refuses one more than 5 minutes off. */
  ts: number;
  /** base64url ed25519 signature of `authPayload(...)`. */
  sig: string;
}

export function authPayload(r: Pick<AuthRequest, 'ids' | 'publicKey' | 'ts'>): Uint8Array {
  return new TextEncoder().encode(`jobledger-auth\n${r.ts}\n${r.publicKey}\n${r.ids.join('\n')}`);
}

export function signAuthRequest(kp: KeyPair, ids: string[], ts = Date.now()): AuthRequest {
  const base = { ids, publicKey: kp.getPublicKey(), ts };
  return { ...base, sig: Buffer.from(kp.sign(authPayload(base))).toString('base64url') };
}

export function verifyAuthRequest(r: AuthRequest, now = Date.now()): string | undefined {
  if (Math.abs(now - r.ts) > 5 * 60_000) return 'the request time is more than 5 minutes off';
  try {
    const ok = fromPublic(r.publicKey).verify(authPayload(r), Buffer.from(r.sig, 'base64url'));
    return ok ? undefined : 'bad signature';
  } catch (err) {
    return `bad key: ${(err as Error).message}`;
  }
}
