import {
  ACTION_SOURCES,
  KEY_STATES,
  encodeAgentId,
  fnmatchToRegExp,
  type KeyAction,
  type KeyListing,
  type KeyState,
} from '@jobledger/core';
import { openAgentsBucket, openProgressBucket, type Ledger } from '../nats.js';
import { pushAccountJwt } from './claims.js';
import type { KeyStore } from './key-store.js';
import { addRevocation } from './master-pki.js';

/**
 * `salt-key`'s accept / reject / delete on the master's key store, shared by the CLI's
 * `jobledger key` and the keyserver's wheel (`key.accept`, …) for the HTTP API.
 */

/** The ids of the given states that match: a glob, or (Salt's `name_match`) several, comma-separated or listed. */
export function matchKeys(listing: KeyListing, match: string | readonly string[], states: readonly KeyState[]): Partial<KeyListing> {
  const globs = typeof match === 'string' ? [match] : match;
  const res = globs.map((g) => fnmatchToRegExp(g));
  const out: Partial<KeyListing> = {};
  for (const state of states) {
    const ids = listing[state].filter((id) => res.some((re) => re.test(id)));
    if (ids.length > 0) out[state] = ids;
  }
  return out;
}

/** Salt's `name_match`: a string with commas names several globs. */
export function saltNameMatch(match: string): string[] {
  return match.includes(',') ? match.split(',') : [match];
}

export interface KeyChange {
  /** Each id moved (or removed), with the state it was in. */
  done: { id: string; state: KeyState }[];
  /** The public keys of accepted ids that lost their acceptance: their credentials are revoked. */
  revoke: Set<string>;
  /** The ids whose presence the master forgets (no longer expected by targets). */
  forget: string[];
}

/** Applies the action to the matched ids (in `KEY_STATES` order). */
export function applyKeyAction(store: KeyStore, action: KeyAction, matched: Partial<KeyListing>): KeyChange {
  const change: KeyChange = { done: [], revoke: new Set(), forget: [] };
  for (const state of KEY_STATES) {
    for (const id of matched[state] ?? []) {
      const publicKey = store.read(state, id);
      if (publicKey === undefined) continue;
      if (action === 'accept') store.put(id, 'accepted', publicKey);
      else if (action === 'reject') store.put(id, 'rejected', publicKey);
      else store.remove(id, state);
      if (state === 'accepted' && action !== 'accept') {
        change.revoke.add(publicKey);
        change.forget.push(id);
      }
      change.done.push({ id, state });
    }
  }
  return change;
}

/** The states an action takes keys from, with Salt's `include_*` options. */
export function actionSources(action: KeyAction, include: { rejected?: boolean; denied?: boolean; accepted?: boolean } = {}): KeyState[] {
  const states = new Set<KeyState>(ACTION_SOURCES[action]);
  if (include.rejected && action === 'accept') states.add('rejected');
  if (include.accepted && action === 'reject') states.add('accepted');
  if (include.denied && action !== 'delete') states.add('denied');
  return KEY_STATES.filter((s) => states.has(s));
}

/** Records the revocations (applied by nats-server at its next start at the latest). */
export function revokeKeys(pkiDir: string, publicKeys: Iterable<string>): void {
  for (const pub of publicKeys) addRevocation(pkiDir, pub);
}

/**
 * On a running server: pushes the account with its revocations (open connections of those
 * keys are closed at once) and forgets the ids' presence and progress.
 */
export async function cutOffRunning(o: { pkiDir: string; natsUrl: string; ledger: Ledger; change: KeyChange }): Promise<void> {
  if (o.change.revoke.size > 0) await pushAccountJwt({ natsUrl: o.natsUrl, pkiDir: o.pkiDir });
  if (o.change.forget.length === 0) return;
  const kv = await openAgentsBucket(o.ledger);
  const progress = await openProgressBucket(o.ledger);
  for (const id of o.change.forget) {
    await kv.delete(encodeAgentId(id));
    await progress.delete(encodeAgentId(id));
  }
}
