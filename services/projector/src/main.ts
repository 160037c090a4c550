#!/usr/bin/env node
// Entry point: `node services/projector/dist/main.js`, configured only through the environment.
import { writeFile } from 'node:fs/promises';
import { ConfigError, createLogger } from '@jobledger/runtime';
import { loadConfig, type ProjectorConfig } from './config.js';
import { startProjector, type Projector } from './projector.js';

async function main(): Promise<void> {
  let config: ProjectorConfig;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`jobledger-projector: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  const logger = createLogger('projector', { file: config.logFile, level: config.logLevel });
  const exit = (code: number) => {
    setTimeout(() => process.exit(code), 1_000).unref();
    logger.flush(() => process.exit(code));
  };
  const fatal = (err: unknown, msg: string) => {
    logger.fatal({ err }, msg);
    process.stderr.write(`jobledger-projector: ${msg}: ${(err as Error)?.message ?? String(err)}\n`);
    exit(1);
  };
  process.on('uncaughtException', (err) => fatal(err, 'uncaught exception'));
  process.on('unhandledRejection', (err) => fatal(err, 'unhandled rejection'));

  let projector: Projector;
  try {
    projector = await startProjector(config, logger);
  } catch (err) {
    fatal(err, `cannot start (NATS ${config.natsUrl}, stream ${config.stream})`);
    return;
  }

  let stopping = false;
  projector.done.then(
    () => {
      if (!stopping) fatal(new Error('the consume loop ended'), 'stopped unexpectedly');
    },
    (err: unknown) => fatal(err, 'projector failed'),
  );
  if (config.readyFile) await writeFile(config.readyFile, `${process.pid}\n`);

  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const force = setTimeout(() => fatal(new Error('timed out'), 'graceful stop'), 30_000);
    force.unref();
    void projector
      .stop()
      .then(() => exit(0))
      .catch((err: unknown) => fatal(err, 'graceful stop failed'));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

void main();
