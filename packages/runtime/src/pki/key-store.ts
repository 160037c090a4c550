import fs from 'node:fs';
import path from 'node:path';
import { KEY_DIRS, KEY_STATES, invalidAgentId, type KeyListing, type KeyState } from '@jobledger/core';
import { writeSecretFile } from './secret-files.js';

export class InvalidKeyIdError extends Error {
  override readonly name = 'InvalidKeyIdError';
  readonly retryable = false;
}

export interface KeyRecord {
  id: string;
  state: KeyState;
  /** The agent's nkey (its public key, `U…`). */
  publicKey: string;
}

/**
 * The master's key store, laid out as Salt's `pki_dir`: one file per id, named after it, in
 * `minions/` (accepted), `minions_pre/` (pending), `minions_rejected/` and `minions_denied/`;
 * each holds the id's public key. Moving a key is a rename, so a key is in one state at a time
 * (a denied key sits beside the id's other key).
 */
export class KeyStore {
  constructor(readonly pkiDir: string) {
    for (const state of KEY_STATES) fs.mkdirSync(this.dir(state), { recursive: true, mode: 0o700 });
  }

  private dir(state: KeyState): string {
    return path.join(this.pkiDir, KEY_DIRS[state]);
  }

  private file(state: KeyState, id: string): string {
    const bad = invalidAgentId(id);
    if (bad) throw new InvalidKeyIdError(`invalid minion id '${id.slice(0, 80)}': ${bad}`);
    return path.join(this.dir(state), id);
  }

  list(): KeyListing {
    const out = { accepted: [], denied: [], pending: [], rejected: [] } as KeyListing;
    for (const state of KEY_STATES) out[state] = fs.readdirSync(this.dir(state)).filter((n) => !n.endsWith('.tmp'));
    return out;
  }

  read(state: KeyState, id: string): string | undefined {
    try {
      return fs.readFileSync(this.file(state, id), 'utf8').trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** The id's key outside `denied`: accepted, pending or rejected. */
  get(id: string): KeyRecord | undefined {
    for (const state of ['accepted', 'pending', 'rejected'] as const) {
      const publicKey = this.read(state, id);
      if (publicKey !== undefined) return { id, state, publicKey };
    }
    return undefined;
  }

  /** Puts the id's key in a state, taking it out of the others (a denied key stays unless `state` is denied). */
  put(id: string, state: KeyState, publicKey: string): void {
    writeSecretFile(this.file(state, id), publicKey + '\n');
    for (const other of KEY_STATES) {
      if (other === state || (state !== 'denied' && other === 'denied')) continue;
      if (state === 'denied') break;
      fs.rmSync(this.file(other, id), { force: true });
    }
  }

  remove(id: string, state: KeyState): void {
    fs.rmSync(this.file(state, id), { force: true });
  }

  /** The ids accepted with that public key. */
  acceptedIdsOf(publicKey: string): string[] {
    return this.list().accepted.filter((id) => this.read('accepted', id) === publicKey);
  }
}
