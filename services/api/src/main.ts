// Entry point: `node services/api/dist/main.js`, configured by the environment and master.yaml.
import { readFileSync } from 'node:fs';
import { serviceMain } from '@jobledger/runtime';
import { LedgerClient } from '@jobledger/runtime/ledger-client';
import { Clients } from './clients.js';
import { configDir, loadConfig } from './config.js';
import { buildApiServer } from './server.js';
import { SessionStore } from './sessions.js';

await serviceMain({
  name: 'api',
  loadConfig,
  start: async (config, logger) => {
    const ledger = await LedgerClient.connect(config.natsUrl, config.stream, config.natsAuth, 'jobledger-api');
    try {
      const clients = new Clients({
        ledger,
        timeout: config.timeout,
        gatherJobTimeout: config.gatherJobTimeout,
        ...(config.enabledClients ? { enabledClients: config.enabledClients } : {}),
      });
      const app = await buildApiServer({
        config: config.rest,
        ledger,
        configDir: configDir(config),
        clients,
        sessions: new SessionStore(config.rest.tokenExpire),
        logger,
        version: (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version,
      });
      const address = await app.listen({ host: config.rest.host, port: config.rest.port });
      logger.info({ address, tls: config.rest.tls !== undefined }, 'salt-api listening');
      return {
        stop: async () => {
          await app.close();
          await ledger.close().catch(() => undefined);
        },
      };
    } catch (err) {
      await ledger.close().catch(() => undefined);
      throw err;
    }
  },
});
