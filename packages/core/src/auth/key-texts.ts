import { sha256 } from '@noble/hashes/sha2.js';

/**
 * Salt's key workflow as `salt-key` shows it: the four states, their headings and directory
 * names, and the texts of accept / reject / delete.
 */

export const KEY_STATES = ['accepted', 'denied', 'pending', 'rejected'] as const;
export type KeyState = (typeof KEY_STATES)[number];

/** `salt-key -L` headings, in Salt's order. */
export const KEY_HEADINGS: Record<KeyState, string> = {
  accepted: 'Accepted Keys:',
  denied: 'Denied Keys:',
  pending: 'Unaccepted Keys:',
  rejected: 'Rejected Keys:',
};

/** Salt's pki directory of each state (and `salt-key --out json`'s keys). */
export const KEY_DIRS: Record<KeyState, string> = {
  accepted: 'minions',
  denied: 'minions_denied',
  pending: 'minions_pre',
  rejected: 'minions_rejected',
};

export type KeyListing = Record<KeyState, string[]>;

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** `salt-key -L`: every heading, each followed by its ids sorted; empty sections keep their heading. */
export function formatKeyListing(keys: Partial<KeyListing>): string {
  const lines: string[] = [];
  for (const state of KEY_STATES) {
    lines.push(KEY_HEADINGS[state], ...[...(keys[state] ?? [])].sort(byCodePoint));
  }
  return lines.join('\n') + '\n';
}

/** `salt-key -L --out json`. */
export function keyListingJson(keys: Partial<KeyListing>): Record<string, string[]> {
  return {
    minions: [...(keys.accepted ?? [])].sort(byCodePoint),
    minions_pre: [...(keys.pending ?? [])].sort(byCodePoint),
    minions_rejected: [...(keys.rejected ?? [])].sort(byCodePoint),
    minions_denied: [...(keys.denied ?? [])].sort(byCodePoint),
  };
}

export type KeyAction = 'accept' | 'reject' | 'delete';

const PAST: Record<KeyAction, string> = { accept: 'accepted', reject: 'rejected', delete: 'deleted' };

/** The states a `salt-key` action takes keys from, in the order Salt lists them. */
export const ACTION_SOURCES: Record<KeyAction, KeyState[]> = {
  accept: ['pending'],
  reject: ['pending'],
  delete: ['accepted', 'denied', 'pending', 'rejected'],
};

/** "The following keys are going to be accepted:" and the matching keys under their headings. */
export function formatActionPreview(action: KeyAction, matched: Partial<KeyListing>): string {
  const lines = [`The following keys are going to be ${PAST[action]}:`];
  for (const state of KEY_STATES) {
    const ids = matched[state];
    if (ids && ids.length > 0) lines.push(KEY_HEADINGS[state], ...[...ids].sort(byCodePoint));
  }
  return lines.join('\n') + '\n';
}

export function keyActionDone(action: KeyAction, id: string): string {
  return `Key for minion ${id} ${PAST[action]}.`;
}

/** Salt's text when a glob matches nothing (it says "unaccepted" for every action). */
export function keyGlobNoMatch(glob: string): string {
  return `The key glob '${glob}' does not match any unaccepted keys.`;
}

/** Salt's fingerprint layout: SHA-256, colon-separated lower-case hex. */
export function fingerprint(bytes: Uint8Array): string {
  return [...sha256(bytes)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** What the agent logs while its key waits, and when it is rejected (Salt's minion's words). */
export const minionTexts = {
  waiting: (seconds: number) =>
    `The Salt Master has cached the public key for this node, this salt minion will wait for ${seconds} seconds before attempting to re-authenticate`,
  retry: (seconds: number) => `Waiting ${seconds} seconds before retry.`,
  rejected: [
    "The Salt Master has rejected this minion's public key!",
    'To repair this issue, delete the public key for this minion on the Salt Master and restart this minion.',
    'Or restart the Salt Master in open mode to clean out the keys. The Salt Minion will now exit.',
  ],
  fingerMismatch: (expected: string, received: string) =>
    `The specified fingerprint in the master configuration file:\n${expected}\nDoes not match the authenticating master's key:\n${received}\nVerify that the configured fingerprint matches the fingerprint of the correct master and that this minion is not subject to a man-in-the-middle attack.`,
} as const;

/** Salt's `valid_id` plus what a file name and a NATS subject token need: at most 255 bytes, no `/`, `\`, NUL, not `.`/`..`. */
export function invalidAgentId(id: string): string | undefined {
  if (id === '') return 'an id cannot be empty';
  if (new TextEncoder().encode(id).length > 255) return 'an id is at most 255 bytes';
  if (id === '.' || id === '..' || /[/\\\0]/.test(id)) return "an id must not be '.', '..' or contain '/', '\\' or NUL";
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(id)) return 'an id must not contain control characters';
  return undefined;
}
