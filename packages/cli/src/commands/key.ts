import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import {
  ACTION_SOURCES,
  KEY_HEADINGS,
  KEY_STATES,
  fnmatchToRegExp,
  formatActionPreview,
  formatKeyListing,
  keyActionDone,
  keyGlobNoMatch,
  keyListingJson,
  type KeyAction,
} from '@jobledger/core';
import { openLedger } from '@jobledger/runtime';
import type * as Pki from '@jobledger/runtime/pki';
import { homeLayout, readState, resolveEndpoints } from '../home.js';
import { syncLedgerKeys } from './ledger-keys.js';
import type { Io } from './run.js';

/**
 * Salt's `salt-key` over the master's key store (`$JOBLEDGER_HOME/pki/minions*`). Accepting a
 * key lets the waiting agent in within moments (its keyserver request is answered with its
 * credentials); rejecting or deleting an accepted key revokes the agent's credentials on the
 * server at once — its open connection is closed and whatever it publishes afterwards is
 * refused — and forgets its presence, so targets no longer expect it.
 */

async function store() {
  const pki = await import('@jobledger/runtime/pki');
  const dir = path.join(homeLayout().root, 'pki');
  return { pki, dir, keys: new pki.KeyStore(dir) };
}

async function ask(question: string, defaultYes: boolean): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const answer = (await rl.question(question).finally(() => rl.close())).trim();
  if (answer === '') return defaultYes;
  return /^y(es)?$/i.test(answer);
}

/** `jobledger key list` = `salt-key -L`. */
export async function keyListCommand(opts: { out?: string }, io: Io): Promise<number> {
  const { keys } = await store();
  const listing = keys.list();
  io.stdout(opts.out === 'json' ? JSON.stringify(keyListingJson(listing), null, 4) + '\n' : formatKeyListing(listing));
  return 0;
}

/** Revokes the keys on the running server (or at its next start) and forgets the ids' presence. */
async function cutOff(pki: typeof Pki, dir: string, change: Pki.KeyChange, io: Io): Promise<void> {
  if (change.revoke.size === 0 && change.forget.length === 0) return;
  pki.revokeKeys(dir, change.revoke);
  const state = readState(homeLayout());
  if (!state?.supervisorPid || !state.natsUrl) return; // applied when the master starts
  try {
    const { natsUrl, stream, auth } = resolveEndpoints();
    const ledger = await openLedger({ natsUrl, stream, name: 'jobledger-key', auth, ensure: false });
    try {
      await pki.cutOffRunning({ pkiDir: dir, natsUrl: state.natsUrl, ledger, change });
    } finally {
      await ledger.nc.close();
    }
  } catch (err) {
    io.stderr(
      `jobledger key: the master could not be told at once (${(err as Error).message}); it applies the change when it next starts\n`,
    );
  }
}

/** `jobledger key accept|reject|delete GLOB [-y]` = `salt-key -a|-r|-d GLOB [-y]` (`--all`: `*`). */
export async function keyActionCommand(action: KeyAction, glob: string, opts: { yes?: boolean }, io: Io): Promise<number> {
  const { pki, dir, keys } = await store();
  const matched = pki.matchKeys(keys.list(), glob, ACTION_SOURCES[action]);
  const count = Object.values(matched).reduce((n, ids) => n + ids.length, 0);
  if (count === 0) {
    io.stdout(keyGlobNoMatch(glob) + '\n');
    return 0;
  }
  io.stdout(formatActionPreview(action, matched));
  if (!opts.yes && !(await ask(action === 'delete' ? 'Proceed? [N/y] ' : 'Proceed? [n/Y] ', action !== 'delete'))) return 0;
  const change = pki.applyKeyAction(keys, action, matched);
  for (const { id } of change.done) io.stdout(keyActionDone(action, id) + '\n');
  await cutOff(pki, dir, change, io);
  await recordInLedger(pki, dir, Object.values(matched).flat(), io);
  return 0;
}

/** The change as key events in the ledger (`key.accepted`, `key.rejected`, `key.deleted`), when the master runs; else at its next start. */
async function recordInLedger(pki: typeof Pki, dir: string, ids: string[], io: Io): Promise<void> {
  const state = readState(homeLayout());
  if (!state?.supervisorPid || !state.natsUrl || ids.length === 0) return;
  try {
    const { natsUrl, stream, auth } = resolveEndpoints();
    await syncLedgerKeys(pki, dir, { natsUrl, stream, auth }, [...new Set(ids)]);
  } catch (err) {
    io.stderr(
      `jobledger key: the change could not be recorded in the ledger now (${(err as Error).message}); the master records it when it next starts\n`,
    );
  }
}

/** `jobledger key finger [ID]` = `salt-key -F` / `salt-key -f ID`. */
export async function keyFingerCommand(glob: string | undefined, io: Io): Promise<number> {
  const { pki, dir, keys } = await store();
  const listing = keys.list();
  const lines: string[] = [];
  if (glob === undefined) {
    const ca = pki.pkiFiles(dir).ca;
    const { readText } = pki;
    const pem = readText(ca);
    lines.push('Local Keys:');
    if (pem !== undefined) lines.push(`ca.pem:  ${pki.certificateFingerprint(pem)}`);
  }
  const re = fnmatchToRegExp(glob ?? '*');
  for (const state of KEY_STATES) {
    const ids = listing[state].filter((id) => re.test(id)).sort();
    if (ids.length === 0) continue;
    lines.push(KEY_HEADINGS[state]);
    for (const id of ids) {
      const publicKey = keys.read(state, id);
      if (publicKey !== undefined) lines.push(`${id}:  ${pki.nkeyFingerprint(publicKey)}`);
    }
  }
  if (glob !== undefined && lines.length === 0) {
    io.stdout(keyGlobNoMatch(glob) + '\n');
    return 0;
  }
  io.stdout(lines.join('\n') + '\n');
  return 0;
}
