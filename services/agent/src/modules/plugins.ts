import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { createJiti } from 'jiti';
import type { Logger } from '@jobledger/runtime';
import type { ExecFunction, ExecModule } from './types.js';

/**
 * Salt's custom execution modules (`<extension_modules>/modules/`, synced there by
 * `saltutil.sync_modules` in Salt): one file per module, whose default export has the shape of
 * the built-in modules — function name → `{kind, signature, doc, run}`. The module is named after
 * the file (`disk.ts` → `disk.*`), or after its `__virtualname__` export. `.ts` files are
 * compiled on load.
 */

/** File kinds loaded as execution modules. */
export const PLUGIN_EXTENSIONS: readonly string[] = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'];

/** Salt module and function names are Python identifiers; a leading `_` is private. */
const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/** A plugin file that cannot be used; the rest still load. */
export class PluginLoadError extends Error {
  override readonly name = 'PluginLoadError';
  readonly retryable = false;
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
  }
}

function toFunction(file: string, fname: string, value: unknown): ExecFunction {
  const bad = (what: string) => new PluginLoadError(file, `function '${fname}' ${what}`);
  if (typeof value !== 'object' || value === null) throw bad('is not an object with run(), signature and doc');
  const f = value as Partial<ExecFunction>;
  if (typeof f.run !== 'function') throw bad('has no run(args, ctx) function');
  const kind = f.kind ?? 'inproc';
  if (kind !== 'inproc' && kind !== 'shell') throw bad(`has kind '${String(kind)}' (inproc or shell)`);
  const sig = f.signature;
  if (typeof sig !== 'object' || sig === null || !Array.isArray(sig.params)) throw bad('has no signature {name, params}');
  for (const p of sig.params as unknown[]) {
    const ok =
      typeof p === 'string' ||
      (typeof p === 'object' && p !== null && typeof (p as { name?: unknown }).name === 'string' && 'default' in p);
    if (!ok) throw bad(`has a parameter that is neither a name nor {name, default}: ${JSON.stringify(p)}`);
  }
  return {
    kind,
    signature: { ...sig, name: typeof sig.name === 'string' ? sig.name : fname },
    doc: typeof f.doc === 'string' ? f.doc : '',
    run: f.run.bind(f),
  };
}

/** Turns a plugin file's exports into its module name and functions; throws PluginLoadError. */
export function pluginModule(file: string, exports: unknown): { name: string; module: ExecModule } {
  const ns = (typeof exports === 'object' && exports !== null ? exports : {}) as Record<string, unknown>;
  const virtual = ns.__virtualname__;
  const name = typeof virtual === 'string' ? virtual : path.basename(file).replace(/\.[^.]+$/, '');
  if (!NAME.test(name)) throw new PluginLoadError(file, `'${name}' is not a module name (letters, digits, _)`);
  const body = 'default' in ns ? ns.default : undefined;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new PluginLoadError(file, 'has no default export mapping function names to functions');
  }
  const functions: Record<string, ExecFunction> = {};
  for (const [fname, value] of Object.entries(body as Record<string, unknown>)) {
    if (!NAME.test(fname)) continue; // private helpers (`_x`), as Salt skips them
    functions[fname] = toFunction(file, fname, value);
  }
  if (Object.keys(functions).length === 0) throw new PluginLoadError(file, 'exports no functions');
  return { name, module: functions };
}

/**
 * Loads every execution module file of `dir` (in name order). A missing directory is no
 * modules; a file that fails to load or has the wrong shape is logged and skipped; a second
 * file for a module name already loaded is skipped.
 */
export async function loadPluginModules(dir: string, log: Logger): Promise<Record<string, ExecModule>> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isFile() && PLUGIN_EXTENSIONS.includes(path.extname(e.name)) && !e.name.endsWith('.d.ts'))
      .map((e) => e.name)
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    log.error({ err, dir }, 'cannot read the execution module directory; no plugin modules loaded');
    return {};
  }
  const jiti = createJiti(import.meta.url, { fsCache: false, moduleCache: false, interopDefault: false });
  const modules: Record<string, ExecModule> = {};
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      let exports: unknown;
      try {
        exports = await jiti.import(file);
      } catch (cause) {
        throw new PluginLoadError(file, `cannot be loaded: ${(cause as Error).message}`, { cause });
      }
      const plugin = pluginModule(file, exports);
      if (plugin.name in modules) {
        log.warn({ file, module: plugin.name }, 'execution module already loaded from another file; this one is skipped');
        continue;
      }
      modules[plugin.name] = plugin.module;
      log.info({ file, module: plugin.name, functions: Object.keys(plugin.module).length }, 'execution module plugin loaded');
    } catch (err) {
      log.error({ err, file }, 'execution module plugin skipped');
    }
  }
  return modules;
}
