// Entry point: `node services/agent/dist/main.js`, configured only through the environment.
import { serviceMain } from '@jobledger/runtime';
import { startAgent } from './agent.js';
import { loadConfig } from './config.js';

await serviceMain({
  name: 'agent',
  loadConfig,
  start: async (config, logger) => {
    const agent = await startAgent(config, logger);
    return { stop: () => agent.stop(), done: agent.closed };
  },
});
