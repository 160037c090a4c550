import { cmd } from './cmd.js';
import { grains } from './grains.js';
import { ret } from './ret.js';
import { saltutil } from './saltutil.js';
import { sys } from './sys.js';
import { test } from './test.js';
import type { ExecFunction, ExecModule } from './types.js';

export * from './types.js';
export { bindArgs, splitArg, InvalidArgumentsError, type BoundArgs, type Signature } from './signature.js';
export { loadPluginModules, pluginModule, PluginLoadError, PLUGIN_EXTENSIONS } from './plugins.js';

/** The built-in execution modules, one file each, keyed on Salt's module name. */
export const BUILTIN_MODULES: Readonly<Record<string, ExecModule>> = { cmd, grains, ret, saltutil, sys, test };

/**
 * The functions an agent offers: the built-in modules, and plugin modules (Salt's custom
 * modules) which, as in Salt, replace a built-in module of the same name.
 */
export class FunctionTable {
  private readonly functions: ReadonlyMap<string, ExecFunction>;
  private readonly sorted: readonly string[];

  constructor(plugins: Readonly<Record<string, ExecModule>> = {}) {
    const modules = { ...BUILTIN_MODULES, ...plugins };
    this.functions = new Map(
      Object.entries(modules).flatMap(([mod, fns]) => Object.entries(fns).map(([name, fn]) => [`${mod}.${name}`, fn] as const)),
    );
    this.sorted = [...this.functions.keys()].sort();
  }

  /** The function `fun` (`test.ping`), or undefined when there is none by that name. */
  lookup(fun: string): ExecFunction | undefined {
    return this.functions.get(fun);
  }

  /** Every function name, sorted. */
  names(): string[] {
    return [...this.sorted];
  }
}

const BUILTINS = new FunctionTable();

/** The built-in function `fun` (`test.ping`), or undefined when there is none by that name. */
export function lookupFunction(fun: string): ExecFunction | undefined {
  return BUILTINS.lookup(fun);
}

/** Every built-in function name, sorted. */
export function functionNames(): string[] {
  return BUILTINS.names();
}
