// Entry point: `node services/projector/dist/main.js`, configured only through the environment
// (and `master_job_cache` / `event_return` of the master configuration file, read at start).
import { serviceMain } from '@jobledger/runtime';
import { loadConfig } from './config.js';
import { startProjector } from './projector.js';
import { startProjectorReturnerFeeds } from './returner-feed.js';

await serviceMain({
  name: 'projector',
  loadConfig,
  start: async (config, logger) => {
    const projector = await startProjector(config, logger);
    // Beside the projection, each on its own consumer and checkpoint: a returner never holds it up.
    const feeds = await startProjectorReturnerFeeds(config, logger).catch(async (err: unknown) => {
      await projector.stop();
      throw err;
    });
    return {
      done: projector.done,
      stop: async () => {
        await Promise.all([feeds.stop(), projector.stop()]);
      },
    };
  },
});
