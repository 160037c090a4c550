// Entry point: `node services/keyserver/dist/main.js`, configured only through the environment.
import { serviceMain } from '@jobledger/runtime';
import { loadConfig } from './config.js';
import { Keyserver } from './keyserver.js';

await serviceMain({
  name: 'keyserver',
  loadConfig,
  start: async (config, logger) => {
    const server = new Keyserver(config, logger);
    const { port } = await server.start();
    logger.info({ host: config.host, port }, 'listening for agent keys');
    return { stop: () => server.stop() };
  },
});
