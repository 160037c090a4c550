/**
 * The returner registry: Salt's returner loader for jobledger. Built-in returners plus plugin
 * files (Salt's `_returners`): every `.js`, `.mjs` or `.ts` file of each extension directory
 * whose default export is a `ReturnerModule`. A plugin with a built-in's name replaces it; a
 * plugin file that fails to load is logged and skipped.
 *
 * Instances are created on first use and cached per (name, `--return_config`), so a returner
 * keeps its connections between jobs. `--return_kwargs` is not part of the key (a key per
 * distinct mapping would grow without limit): a returner reads it from each call's
 * `ret.ret_kwargs`, as Salt's returners do (`_get_options(ret)`).
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createJiti } from 'jiti';
import {
  ReturnerError,
  type Returner,
  type ReturnerContext,
  type ReturnerLogger,
  type ReturnerModule,
  type ReturnerRole,
} from '@jobledger/core';
import { builtinReturners } from './builtins.js';
import { errorText } from './support.js';

const PLUGIN_FILE = /\.(?:js|mjs|ts)$/;

export interface ReturnerRegistryOptions {
  role: ReturnerRole;
  /** The agent id (role `agent`) or the master id (role `master`). */
  hostId: string;
  /** minion.yaml (agent) or master.yaml (master), as returners read their options from it. */
  config: Readonly<Record<string, unknown>>;
  logger: ReturnerLogger;
  /** Directories of plugin returner files, in order; a later file wins a name clash. */
  extensionDirs?: readonly string[];
  /** Plugins already loaded with `loadReturnerPlugins` (one load shared by many registries); `extensionDirs` is then not read. */
  plugins?: readonly ReturnerPlugin[];
  /** The built-in modules (default: `builtinReturners`). */
  builtins?: readonly ReturnerModule[];
}

export interface ReturnerGetOptions {
  /** `--return_config NAME`. */
  retConfig?: string;
  /**
   * `--return_kwargs`: accepted but not used to pick or create the instance; the returner reads
   * them from `ret.ret_kwargs` of each call.
   */
  retKwargs?: Readonly<Record<string, unknown>>;
}

/** Salt's minion text when a job names a returner it cannot load. */
export function returnerNotLoadedText(name: string): string {
  return `Returner ${name}.returner could not be loaded: '${name}.returner' is not available.`;
}

/** A returner name that is neither built in nor a plugin. */
export class UnknownReturnerError extends ReturnerError {
  constructor(returner: string) {
    super(returner, returnerNotLoadedText(returner), { retryable: false });
    this.message = returnerNotLoadedText(returner);
  }
}

/** A value that has the shape of a ReturnerModule. */
export function isReturnerModule(value: unknown): value is ReturnerModule {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Partial<ReturnerModule>;
  return typeof m.name === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(m.name) && typeof m.create === 'function';
}

function coreEntry(): string | undefined {
  try {
    return fileURLToPath(import.meta.resolve('@jobledger/core'));
  } catch {
    return undefined;
  }
}

export class ReturnerRegistry {
  private readonly modules = new Map<string, ReturnerModule>();
  private readonly plugins = new Map<string, string>();
  private readonly instances = new Map<string, Promise<Returner>>();
  private pluginsLoaded?: Promise<void>;

  constructor(private readonly options: ReturnerRegistryOptions) {
    for (const m of options.builtins ?? builtinReturners) this.modules.set(m.name, m);
  }

  /**
   * Loads the plugin files of the extension directories (once; `get` does it too). Until then
   * `names()` lists the built-ins only.
   */
  loadPlugins(): Promise<void> {
    this.pluginsLoaded ??= this.options.plugins
      ? Promise.resolve(this.addPlugins(this.options.plugins))
      : loadReturnerPlugins(this.options.extensionDirs ?? [], this.options.logger).then((p) => this.addPlugins(p));
    return this.pluginsLoaded;
  }

  private addPlugins(plugins: readonly ReturnerPlugin[]): void {
    for (const { module: mod, file } of plugins) {
      const previous = this.plugins.get(mod.name);
      if (previous) this.options.logger.warn({ file, previous }, `Returner plugin ${file} replaces ${previous} (both named ${mod.name})`);
      else if (this.modules.has(mod.name))
        this.options.logger.info({ file }, `Returner plugin ${file} overrides the built-in returner ${mod.name}`);
      this.modules.set(mod.name, mod);
      this.plugins.set(mod.name, file);
    }
  }

  /** Every returner name, built-ins and loaded plugins, sorted (`sys.list_returners`). */
  names(): string[] {
    return [...this.modules.keys()].sort();
  }

  /** The file a plugin returner was loaded from, if `name` is a plugin. */
  pluginFile(name: string): string | undefined {
    return this.plugins.get(name);
  }

  /** The returner `name` with the job's return options; `UnknownReturnerError` if there is none. */
  async get(name: string, opts: ReturnerGetOptions = {}): Promise<Returner> {
    await this.loadPlugins();
    const retConfig = opts.retConfig === '' ? undefined : opts.retConfig;
    const key = JSON.stringify([name, retConfig ?? null]);
    let instance = this.instances.get(key);
    if (!instance) {
      instance = this.create(name, retConfig);
      this.instances.set(key, instance);
      instance.catch(() => {
        if (this.instances.get(key) === instance) this.instances.delete(key);
      });
    }
    return instance;
  }

  private async create(name: string, retConfig: string | undefined): Promise<Returner> {
    const mod = this.modules.get(name);
    if (!mod) throw new UnknownReturnerError(name);
    const { role, hostId, config, logger } = this.options;
    const ctx: ReturnerContext = {
      name,
      role,
      hostId,
      config,
      logger,
      load: (other) => this.get(other, retConfig !== undefined ? { retConfig } : {}),
      ...(retConfig !== undefined ? { retConfig } : {}),
    };
    try {
      const returner = await mod.create(ctx);
      if (typeof returner?.returner !== 'function') {
        throw new ReturnerError(name, 'the module created no returner(ret) function', { retryable: false });
      }
      return returner;
    } catch (err) {
      if (err instanceof ReturnerError) throw err;
      throw new ReturnerError(name, `could not be created: ${errorText(err)}`, { retryable: false, cause: err });
    }
  }

  /** Closes every returner created so far. */
  async closeAll(): Promise<void> {
    const instances = [...this.instances.values()];
    this.instances.clear();
    for (const p of instances) {
      const returner = await p.catch(() => undefined);
      try {
        await returner?.close?.();
      } catch (err) {
        this.options.logger.warn({ err }, `A returner failed to close: ${errorText(err)}`);
      }
    }
  }
}

/** A plugin returner and the file it came from. */
export interface ReturnerPlugin {
  module: ReturnerModule;
  file: string;
}

/**
 * The plugin returners of the extension directories (Salt's `_returners`): every `.js`, `.mjs`
 * or `.ts` file whose default export is a returner module, in file-name order. A file that does
 * not load, or exports something else, is logged and skipped.
 */
export async function loadReturnerPlugins(dirs: readonly string[], logger: ReturnerLogger): Promise<ReturnerPlugin[]> {
  const out: ReturnerPlugin[] = [];
  if (dirs.length === 0) return out;
  const core = coreEntry();
  const jiti = createJiti(import.meta.url, {
    fsCache: false,
    moduleCache: false,
    interopDefault: true,
    ...(core ? { alias: { '@jobledger/core': core } } : {}),
  });
  for (const dir of dirs) {
    let files: string[];
    try {
      files = (await readdir(dir, { withFileTypes: true }))
        .filter((e) => e.isFile() && PLUGIN_FILE.test(e.name) && !e.name.endsWith('.d.ts'))
        .map((e) => e.name);
    } catch (err) {
      logger.warn({ dir, err }, `Returner extension directory ${dir} could not be read: ${errorText(err)}`);
      continue;
    }
    for (const file of files.sort()) {
      const full = path.resolve(dir, file);
      try {
        const mod = await jiti.import(full, { default: true });
        if (!isReturnerModule(mod)) {
          logger.warn({ file: full }, `Returner plugin ${full} has no default export {name, create}: skipped`);
          continue;
        }
        out.push({ module: mod, file: full });
      } catch (err) {
        logger.error({ file: full, err }, `Returner plugin ${full} could not be loaded: ${errorText(err)}`);
      }
    }
  }
  return out;
}
