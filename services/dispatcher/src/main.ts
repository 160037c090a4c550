// Entry point: `node services/dispatcher/dist/main.js`, configured only through the environment.
import { serviceMain } from '@jobledger/runtime';
import { loadConfig } from './config.js';
import { startDispatcher } from './dispatcher.js';

await serviceMain({ name: 'dispatcher', loadConfig, start: startDispatcher, stopTimeoutMs: 10_000 });
