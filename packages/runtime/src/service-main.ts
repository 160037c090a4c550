import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from './config.js';
import { createLogger, type Logger } from './logger.js';

/** What a service's start function hands back. */
export interface RunningService {
  stop(): Promise<void>;
  /** Settles when the service stops on its own; a settlement before `stop()` is fatal. */
  done?: Promise<unknown>;
}

export interface ServiceMainOptions<C extends { logFile?: string; logLevel: string; readyFile?: string }> {
  /** The service name: logger name and prefix of stderr lines. */
  name: string;
  loadConfig(env: NodeJS.ProcessEnv): C;
  start(config: C, logger: Logger): Promise<RunningService>;
  /** How long a graceful stop may take before the process exits anyway. */
  stopTimeoutMs?: number;
}

/**
 * The entry point every service shares: configuration from the environment (a bad one is a
 * single stderr line and exit 2), a pino logger, the ready file once started, and a graceful
 * stop on SIGTERM/SIGINT (exit 0; 1 when anything fails).
 */
export async function serviceMain<C extends { logFile?: string; logLevel: string; readyFile?: string }>(
  opts: ServiceMainOptions<C>,
): Promise<void> {
  const prefix = `jobledger-${opts.name}`;
  let config: C;
  try {
    config = opts.loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${prefix}: configuration error: ${err.message}\n`);
    process.exit(2);
  }

  const logger = createLogger(opts.name, { file: config.logFile, level: config.logLevel });
  const exit = (code: number) => {
    setTimeout(() => process.exit(code), 1_000).unref();
    logger.flush(() => process.exit(code));
  };
  const fatal = (err: unknown, msg: string) => {
    logger.fatal({ err }, msg);
    // Without a log file the logger already writes to stderr.
    if (config.logFile) process.stderr.write(`${prefix}: ${msg}: ${(err as Error)?.message ?? String(err)}\n`);
    exit(1);
  };
  process.on('uncaughtException', (err) => fatal(err, 'uncaught exception'));
  process.on('unhandledRejection', (err) => fatal(err, 'unhandled rejection'));

  // Signals are handled from the start: one arriving during start-up stops the service as
  // soon as it is up, and the ready file is written only with the handlers in place.
  let service: RunningService | undefined;
  let stopping = false;
  let requested: NodeJS.Signals | undefined;
  const shutdown = (signal: NodeJS.Signals) => {
    if (!service) {
      requested = signal;
      return;
    }
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    setTimeout(() => fatal(new Error('timed out'), 'graceful stop'), opts.stopTimeoutMs ?? 30_000).unref();
    service.stop().then(
      () => exit(0),
      (err: unknown) => fatal(err, 'graceful stop failed'),
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  try {
    service = await opts.start(config, logger);
  } catch (err) {
    fatal(err, 'cannot start');
    return;
  }
  service.done?.then(
    () => {
      if (!stopping) fatal(new Error('the service loop ended'), 'stopped unexpectedly');
    },
    (err: unknown) => fatal(err, 'failed'),
  );
  if (requested) {
    shutdown(requested);
    return;
  }
  if (config.readyFile) {
    await mkdir(path.dirname(config.readyFile), { recursive: true });
    // Written then renamed, so whoever sees the file sees its content.
    await writeFile(`${config.readyFile}.tmp`, `${process.pid}\n`);
    await rename(`${config.readyFile}.tmp`, config.readyFile);
  }
}
