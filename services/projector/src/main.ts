// Entry point: `node services/projector/dist/main.js`, configured only through the environment
// (and `master_job_cache` / `event_return` of the master configuration file, read at start).
import { lowerProcessPriority, migrateDatabase, serviceMain } from '@jobledger/runtime';
import { loadConfig } from './config.js';
import { acquireLeadership } from './leadership.js';
import { startProjector } from './projector.js';
import { startProjectorReturnerFeeds } from './returner-feed.js';

await serviceMain({
  name: 'projector',
  loadConfig,
  start: async (config, logger) => {
    if (config.nice > 0) logger.info({ nice: config.nice, threads: lowerProcessPriority(config.nice) }, 'CPU priority lowered');
    // Ready once the schema is there (migrations hold their own lock), active or standby: the
    // projection and the feeds start once the projector lock is ours.
    await migrateDatabase(config.databaseUrl);
    const leadership = acquireLeadership(config.databaseUrl, config.consumer, logger);
    let stopActive: (() => Promise<void>) | undefined;
    const active = (async () => {
      if (!(await leadership.acquired)) return;
      const projector = await startProjector(config, logger);
      // Beside the projection, each on its own consumer and checkpoint: a returner never holds it up.
      const feeds = await startProjectorReturnerFeeds(config, logger).catch(async (err: unknown) => {
        await projector.stop();
        throw err;
      });
      stopActive = () => Promise.all([feeds.stop(), projector.stop()]).then(() => undefined);
      await Promise.race([projector.done, leadership.lost]);
    })();
    return {
      done: active,
      stop: async () => {
        await stopActive?.();
        await leadership.release();
      },
    };
  },
});
