import { createInterface } from 'node:readline/promises';
import { decodeAgentId, fnmatchToRegExp } from '@jobledger/core';
import { openAgentsBucket, openLedger } from '@jobledger/runtime';
import { resolveEndpoints } from '../home.js';
import { MASTER_UNREACHABLE, MasterUnreachableError } from '../ledger-client.js';
import type { Io } from './run.js';

/**
 * Salt's `salt-key` for the ids the agents registered (the presence bucket `ledger_agents`):
 * every registered id is an accepted key, as jobledger has no key acceptance. A key stays after
 * its agent stops, so the id is still expected and reported as not returning: `key delete`
 * forgets it. An agent that is still running registers its id again when it next starts or
 * handles a job.
 */

async function withKeys<T>(fn: (kv: Awaited<ReturnType<typeof openAgentsBucket>>) => Promise<T>): Promise<T> {
  const { natsUrl, stream } = resolveEndpoints();
  let ledger;
  try {
    ledger = await openLedger({ natsUrl, stream, name: 'jobledger-key' });
  } catch (cause) {
    throw new MasterUnreachableError(MASTER_UNREACHABLE, { cause });
  }
  try {
    return await fn(await openAgentsBucket(ledger));
  } finally {
    await ledger.nc.close();
  }
}

async function acceptedIds(kv: Awaited<ReturnType<typeof openAgentsBucket>>): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for await (const key of await kv.keys()) ids.set(decodeAgentId(key), key);
  return new Map([...ids].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Salt's `salt-key -L` layout; only accepted keys exist here. */
export function formatKeyList(ids: readonly string[]): string {
  return ['Accepted Keys:', ...ids, 'Denied Keys:', 'Unaccepted Keys:', 'Rejected Keys:'].join('\n') + '\n';
}

/** `jobledger key list` = `salt-key -L`. */
export async function keyListCommand(io: Io): Promise<number> {
  const ids = await withKeys(acceptedIds);
  io.stdout(formatKeyList([...ids.keys()]));
  return 0;
}

/** `jobledger key delete <glob> [-y]` = `salt-key -d <glob> [-y]`. */
export async function keyDeleteCommand(glob: string, opts: { yes?: boolean }, io: Io): Promise<number> {
  return withKeys(async (kv) => {
    const re = fnmatchToRegExp(glob);
    const matched = [...(await acceptedIds(kv))].filter(([id]) => re.test(id));
    if (matched.length === 0) {
      io.stderr(`The key glob '${glob}' does not match any accepted keys.\n`);
      return 1;
    }
    io.stdout(`The following keys are going to be deleted:\nAccepted Keys:\n${matched.map(([id]) => id).join('\n')}\n`);
    if (!opts.yes) {
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      const answer = await rl.question('Proceed? [N/y] ').finally(() => rl.close());
      if (!/^y(es)?$/i.test(answer.trim())) return 0;
    }
    for (const [id, key] of matched) {
      await kv.delete(key);
      io.stdout(`Key for minion ${id} deleted.\n`);
    }
    return 0;
  });
}
