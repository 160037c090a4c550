import { z } from 'zod';
import { agentId, stamp } from './common.js';

/**
 * `salt/key`: Salt's master fires it when a key is accepted, rejected or deleted
 * (`{act, id, result}`). The ledger keeps it with the key itself (`pub`, the agent's nkey), so a
 * replay knows which key was valid for which id at each sequence: an agent's events are
 * trusted when they are signed with the key of the id's last `key.accepted` before them.
 * Appended by the master (keyserver, `key` commands, `up`) and signed with its event key.
 */
export const KEY_TAG = 'salt/key' as const;

export const KEY_ACTS = { 'key.accepted': 'accept', 'key.rejected': 'reject', 'key.deleted': 'delete' } as const;
export type KeyEventType = keyof typeof KEY_ACTS;

function keyEvent<T extends KeyEventType>(type: T) {
  return z.object({
    type: z.literal(type),
    tag: z.literal(KEY_TAG),
    data: z.looseObject({
      id: agentId,
      act: z.literal(KEY_ACTS[type]),
      result: z.literal(true),
      /** The agent's public nkey (`U…`). */
      pub: z.string().regex(/^U[A-Z2-7]{55}$/, 'not a user nkey'),
      _stamp: stamp,
    }),
  });
}

export const keyAccepted = keyEvent('key.accepted');
export const keyRejected = keyEvent('key.rejected');
export const keyDeleted = keyEvent('key.deleted');
export type KeyAccepted = z.infer<typeof keyAccepted>;
export type KeyRejected = z.infer<typeof keyRejected>;
export type KeyDeleted = z.infer<typeof keyDeleted>;
export type KeyEvent = KeyAccepted | KeyRejected | KeyDeleted;

export function isKeyEvent(e: { type: string }): e is KeyEvent {
  return e.type in KEY_ACTS;
}
