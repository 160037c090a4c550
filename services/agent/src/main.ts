import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, createLogger } from '@jobledger/runtime';
import { startAgent } from './agent.js';
import { loadConfig, type AgentConfig } from './config.js';

let config: AgentConfig;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`jobledger agent: configuration error: ${err.message}\n`);
  process.exit(2);
}

const logger = createLogger('agent', { file: config.logFile, level: config.logLevel });

const exit = (code: number): never => {
  logger.flush();
  // Let pino's asynchronous destination write what it has.
  setTimeout(() => process.exit(code), 50);
  return undefined as never;
};

try {
  const agent = await startAgent(config, logger);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    agent.stop().then(
      () => exit(0),
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  agent.closed.catch((err: unknown) => {
    logger.fatal({ err }, 'agent failed');
    exit(1);
  });

  if (config.readyFile) {
    await mkdir(path.dirname(config.readyFile), { recursive: true });
    await writeFile(config.readyFile, `${process.pid}\n`);
  }
} catch (err) {
  logger.fatal({ err }, 'agent could not start');
  process.stderr.write(`jobledger agent: could not start: ${(err as Error).message}\n`);
  exit(1);
}
