import { existsSync } from 'node:fs';
import path from 'node:path';
import { ReturnerRegistry } from '@jobledger/returners';
import type { Logger } from '@jobledger/runtime';
import type { AgentConfig } from './config.js';
import type { ReturnerSource } from './returner-calls.js';

/**
 * The returner registries of an agent process, one per hosted id (a returner is told which
 * minion runs it), each made when first needed: the built-ins and the plugin returners of
 * `<extension_modules>/returners/`, reading their options from the minion configuration.
 */
export function agentReturnerSources(config: AgentConfig, log: Logger): { get(id: string): ReturnerSource; closeAll(): Promise<void> } {
  const registries = new Map<string, ReturnerRegistry>();
  // No directory, no plugins (and no warning about it on every first use).
  const pluginDir = path.join(config.extensionModules, 'returners');
  const extensionDirs = existsSync(pluginDir) ? [pluginDir] : [];
  const registryOf = (id: string): ReturnerRegistry => {
    let r = registries.get(id);
    if (r === undefined) {
      r = new ReturnerRegistry({ role: 'agent', hostId: id, config: config.minion, logger: log.child({ agent: id }), extensionDirs });
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
