#!/usr/bin/env node
// Entry point: `node services/dispatcher/dist/main.js`, configured only through the environment.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, createLogger } from '@jobledger/runtime';
import { loadConfig, type DispatcherConfig } from './config.js';
import { startDispatcher } from './dispatcher.js';

async function main(): Promise<void> {
  let config: DispatcherConfig;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`jobledger-dispatcher: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  const logger = createLogger('dispatcher', { file: config.logFile, level: config.logLevel });
  const exit = (code: number) => {
    setTimeout(() => process.exit(code), 1_000).unref();
    logger.flush(() => process.exit(code));
  };
  const fatal = (err: unknown, msg: string) => {
    logger.fatal({ err }, msg);
    // Without a log file the logger already writes to stderr.
    if (config.logFile) process.stderr.write(`jobledger-dispatcher: ${msg}: ${(err as Error)?.message ?? String(err)}\n`);
    exit(1);
  };
  process.on('uncaughtException', (err) => fatal(err, 'uncaught exception'));
  process.on('unhandledRejection', (err) => fatal(err, 'unhandled rejection'));

  let dispatcher;
  try {
    dispatcher = await startDispatcher(config, logger);
  } catch (err) {
    fatal(err, `cannot start (NATS ${config.natsUrl}, stream ${config.stream})`);
    return;
  }
  if (config.readyFile) {
    await mkdir(path.dirname(config.readyFile), { recursive: true });
    await writeFile(config.readyFile, `${process.pid}\n`);
  }

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    setTimeout(() => fatal(new Error('timed out'), 'graceful stop'), 10_000);
    void dispatcher
      .stop()
      .then(() => exit(0))
      .catch((err: unknown) => fatal(err, 'graceful stop failed'));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

void main();
