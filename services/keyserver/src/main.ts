// Entry point: `node services/keyserver/dist/main.js`, configured only through the environment.
import { ConfigError, masterEventSigner, openLedger, serviceMain } from '@jobledger/runtime';
import { loadConfig } from './config.js';
import { Keyserver } from './keyserver.js';
import { startWheelService } from './wheel.js';

await serviceMain({
  name: 'keyserver',
  loadConfig,
  start: async (config, logger) => {
    const signer = masterEventSigner(config.pkiDir);
    if (!signer) throw new ConfigError(`no master event key in ${config.pkiDir} (events.nk): start the master once to make it`);
    const ledger = await openLedger({
      natsUrl: config.natsUrl,
      stream: config.stream,
      name: 'jobledger-keyserver',
      auth: config.natsAuth,
      ensure: false,
    });
    const server = new Keyserver(config, logger, { ledger, signer });
    let wheel: Awaited<ReturnType<typeof startWheelService>> | undefined;
    try {
      const appended = await server.syncKeyEvents();
      logger.info({ appended }, 'key events in step with the key store');
      const { port } = await server.start();
      logger.info({ host: config.host, port }, 'listening for agent keys');
      wheel = await startWheelService({
        ledger,
        signer,
        store: server.store,
        pkiDir: config.pkiDir,
        natsUrl: config.natsUrl,
        masterConfigFile: config.masterConfigFile,
        syncKeyEvents: (ids) => server.syncKeyEvents(ids),
        logger,
      });
    } catch (err) {
      await server.stop().catch(() => undefined);
      await ledger.nc.close().catch(() => undefined);
      throw err;
    }
    return {
      stop: async () => {
        await wheel?.stop();
        await server.stop();
        await ledger.nc.close().catch(() => undefined);
      },
    };
  },
});
