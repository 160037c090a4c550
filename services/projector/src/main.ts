// Entry point: `node services/projector/dist/main.js`, configured only through the environment.
import { serviceMain } from '@jobledger/runtime';
import { loadConfig } from './config.js';
import { startProjector } from './projector.js';

await serviceMain({ name: 'projector', loadConfig, start: (config, logger) => startProjector(config, logger) });
