import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadReturnerPlugins, ReturnerRegistry } from '@jobledger/returners';
import type { Logger } from '@jobledger/runtime';
import type { AgentConfig } from './config.js';
import type { ReturnerSource } from './returner-calls.js';

/**
 * The returner registries of an agent process, one per hosted id (a returner is told which
 * minion runs it), each made when first needed: the built-ins and the plugin returners of
 * `<extension_modules>/returners/` — loaded once, at the agent's start, as Salt's minion loads
 * its `_returners` — reading their options from the minion configuration.
 */
export async function agentReturnerSources(
  config: AgentConfig,
  log: Logger,
): Promise<{ get(id: string): ReturnerSource; closeAll(): Promise<void> }> {
  const registries = new Map<string, ReturnerRegistry>();
  // No directory, no plugins (and no warning about it).
  const pluginDir = path.join(config.extensionModules, 'returners');
  const plugins = await loadReturnerPlugins(existsSync(pluginDir) ? [pluginDir] : [], log);
  if (plugins.length > 0) log.info({ returners: plugins.map((p) => p.module.name) }, 'plugin returners loaded');
  const registryOf = (id: string): ReturnerRegistry => {
    let r = registries.get(id);
    if (r === undefined) {
      r = new ReturnerRegistry({ role: 'agent', hostId: id, config: config.minion, logger: log.child({ agent: id }), plugins });
      registries.set(id, r);
    }
    return r;
  };
  return {
    get(id) {
      const r = registryOf(id);
      return {
        names: async () => {
          await r.loadPlugins();
          return r.names();
        },
        get: (name, opts) => r.get(name, opts),
        closeAll: () => r.closeAll(),
      };
    },
    async closeAll() {
      await Promise.allSettled([...registries.values()].map((r) => r.closeAll()));
    },
  };
}
