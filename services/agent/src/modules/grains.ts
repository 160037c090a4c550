import { traverse } from '../grains.js';
import type { ExecModule } from './types.js';

/** Salt's `grains` module, over the id's grains. */
export const grains: ExecModule = {
  items: {
    kind: 'inproc',
    signature: { name: 'items', params: [{ name: 'sanitize', default: false }] },
    doc: 'Return all of the minion’s grains.',
    run: async (_args, ctx) => ({ return: ctx.grains }),
  },
  get: {
    kind: 'inproc',
    signature: {
      name: 'get',
      params: ['key', { name: 'default', default: '' }, { name: 'delimiter', default: ':' }, { name: 'ordered', default: true }],
    },
    doc: 'Attempt to retrieve the named value from grains; a `:` in the key walks nested mappings and lists.',
    run: async ({ named }, ctx) => ({
      return: traverse(ctx.grains, String(named.key), named.default, typeof named.delimiter === 'string' ? named.delimiter : ':'),
    }),
  },
  item: {
    kind: 'inproc',
    signature: { name: 'item', params: [], varargs: true, varkw: true },
    doc: 'Return one or more grains: `{key: value}` for each key given.',
    run: async ({ rest }, ctx) => {
      const out: Record<string, unknown> = {};
      for (const key of rest) out[String(key)] = traverse(ctx.grains, String(key), '');
      return { return: out };
    },
  },
  ls: {
    kind: 'inproc',
    signature: { name: 'ls', params: [] },
    doc: 'Return a list of all available grains.',
    run: async (_args, ctx) => ({ return: Object.keys(ctx.grains).sort() }),
  },
};
