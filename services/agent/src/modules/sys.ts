import { globMatch } from '@jobledger/core';
import type { ExecModule } from './types.js';

/** Salt's `sys` module (the parts about the function list). */
export const sys: ExecModule = {
  list_functions: {
    kind: 'inproc',
    signature: { name: 'list_functions', params: [], varargs: true, varkw: true },
    doc: 'List the functions for all modules, or for the modules (or globs) given.',
    run: async ({ rest }, ctx) => {
      const all = ctx.functionNames();
      if (rest.length === 0) return { return: [...all].sort() };
      const names = new Set<string>();
      for (const m of rest.map(String)) {
        const hit = m.includes('*') || m.includes('.') ? (f: string) => globMatch(f, m) : (f: string) => f.startsWith(`${m}.`);
        for (const f of all) if (hit(f)) names.add(f);
      }
      return { return: [...names].sort() };
    },
  },
  list_modules: {
    kind: 'inproc',
    signature: { name: 'list_modules', params: [], varargs: true },
    doc: 'List the modules loaded on the minion.',
    run: async (_args, ctx) => ({ return: [...new Set(ctx.functionNames().map((f) => f.split('.')[0]!))].sort() }),
  },
};
