import { cmd } from './cmd.js';
import { grains } from './grains.js';
import { saltutil } from './saltutil.js';
import { sys } from './sys.js';
import { test } from './test.js';
import type { ExecFunction, ExecModule } from './types.js';

export * from './types.js';
export { bindArgs, splitArg, InvalidArgumentsError, type BoundArgs, type Signature } from './signature.js';

/** The execution modules, one file each, keyed on Salt's module name. */
const MODULES: Readonly<Record<string, ExecModule>> = { cmd, grains, saltutil, sys, test };

const FUNCTIONS: ReadonlyMap<string, ExecFunction> = new Map(
  Object.entries(MODULES).flatMap(([mod, fns]) => Object.entries(fns).map(([name, fn]) => [`${mod}.${name}`, fn] as const)),
);

const NAMES: readonly string[] = [...FUNCTIONS.keys()].sort();

/** The function `fun` (`test.ping`), or undefined when the agent has none by that name. */
export function lookupFunction(fun: string): ExecFunction | undefined {
  return FUNCTIONS.get(fun);
}

/** Every function name, sorted. */
export function functionNames(): string[] {
  return [...NAMES];
}
