import { globMatch } from '@jobledger/core';
import type { ExecContext, ExecModule } from './types.js';

/** Salt's module-or-glob filter of the `sys.list_*` functions: `cmd`, `cmd.run`, `test.p*`. */
function selects(pattern: string): (fun: string) => boolean {
  if (pattern.includes('*') || pattern.includes('.')) return (f) => globMatch(f, pattern) || f === pattern;
  return (f) => f.startsWith(`${pattern}.`);
}

/** The function names `patterns` select (every name without patterns), sorted. */
function selected(ctx: ExecContext, patterns: readonly unknown[]): string[] {
  const all = ctx.functionNames();
  if (patterns.length === 0) return [...all].sort();
  const names = new Set<string>();
  for (const p of patterns.map(String)) {
    const hit = selects(p);
    for (const f of all) if (hit(f)) names.add(f);
  }
  return [...names].sort();
}

/** Salt's `sys` module (the parts about what the agent offers). */
export const sys: ExecModule = {
  list_functions: {
    kind: 'inproc',
    signature: { name: 'list_functions', params: [], varargs: true, varkw: true },
    doc: 'List the functions for all modules, or for the modules (or globs) given.',
    run: async ({ rest }, ctx) => ({ return: selected(ctx, rest) }),
  },
  list_modules: {
    kind: 'inproc',
    signature: { name: 'list_modules', params: [], varargs: true },
    doc: 'List the modules loaded on the minion.',
    run: async (_args, ctx) => ({ return: [...new Set(ctx.functionNames().map((f) => f.split('.')[0]!))].sort() }),
  },
  doc: {
    kind: 'inproc',
    signature: { name: 'doc', params: [], varargs: true },
    doc: "Return the docstrings of every function, or of the modules, functions or globs given: {'<module>.<function>': docstring}.",
    run: async ({ rest }, ctx) => {
      const docs: Record<string, string> = {};
      for (const f of selected(ctx, rest)) docs[f] = ctx.lookupFunction?.(f)?.doc ?? '';
      return { return: docs };
    },
  },
  list_returners: {
    kind: 'inproc',
    signature: { name: 'list_returners', params: [], varargs: true },
    doc: 'List the returners available to the minion, or those matching the globs given.',
    run: async ({ rest }, ctx) => {
      const all = (await ctx.returnerNames?.()) ?? [];
      const globs = rest.map(String);
      const names = globs.length === 0 ? all : all.filter((n) => globs.some((g) => globMatch(n, g)));
      return { return: [...new Set(names)].sort() };
    },
  },
};
