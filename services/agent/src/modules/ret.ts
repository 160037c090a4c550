import { notImplementedText, type Returner } from '@jobledger/core';
import { CommandExecutionError, type ExecContext, type ExecFunction, type ExecModule } from './types.js';

/**
 * Salt's `ret` module (`salt/modules/ret.py`): reads back what a returner stored, through the
 * returner's own `get_*` functions — `salt '*' ret.get_jid local_cache <jid>`.
 */

type Reader = 'getJid' | 'getFun' | 'getJids' | 'getMinions';
const SALT_NAME: Record<Reader, string> = { getJid: 'get_jid', getFun: 'get_fun', getJids: 'get_jids', getMinions: 'get_minions' };

async function reader(ctx: ExecContext, returnerName: unknown, fn: Reader): Promise<Returner> {
  const name = String(returnerName);
  if (!ctx.returner) throw new CommandExecutionError(`'${name}.${SALT_NAME[fn]}' is not available.`);
  let returner: Returner;
  try {
    returner = await ctx.returner(name);
  } catch (err) {
    throw new CommandExecutionError((err as Error).message, { cause: err });
  }
  if (typeof returner[fn] !== 'function') throw new CommandExecutionError(notImplementedText(name, SALT_NAME[fn]));
  return returner;
}

async function call<T>(ctx: ExecContext, returnerName: unknown, fn: Reader, go: (r: Returner) => Promise<T>): Promise<{ return: T }> {
  const r = await reader(ctx, returnerName, fn);
  try {
    return { return: await go(r) };
  } catch (err) {
    throw new CommandExecutionError((err as Error).message, { cause: err });
  }
}

const getJid: ExecFunction = {
  kind: 'inproc',
  signature: { name: 'get_jid', params: ['returner', 'jid'] },
  doc: 'Return the information for a specified job id: {minion id: return data}, as the returner stored it.',
  run: async ({ named }, ctx) => call(ctx, named.returner, 'getJid', (r) => r.getJid!(String(named.jid))),
};

const getFun: ExecFunction = {
  kind: 'inproc',
  signature: { name: 'get_fun', params: ['returner', 'fun'] },
  doc: 'Return info about the last time fun was called on each minion.',
  run: async ({ named }, ctx) => call(ctx, named.returner, 'getFun', (r) => r.getFun!(String(named.fun))),
};

const getJids: ExecFunction = {
  kind: 'inproc',
  signature: { name: 'get_jids', params: ['returner'] },
  doc: 'Return a list of all job ids.',
  run: async ({ named }, ctx) => call(ctx, named.returner, 'getJids', (r) => r.getJids!()),
};

const getMinions: ExecFunction = {
  kind: 'inproc',
  signature: { name: 'get_minions', params: ['returner'] },
  doc: 'Return a list of all minions.',
  run: async ({ named }, ctx) => call(ctx, named.returner, 'getMinions', (r) => r.getMinions!()),
};

export const ret: ExecModule = { get_jid: getJid, get_fun: getFun, get_jids: getJids, get_minions: getMinions };
