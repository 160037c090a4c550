import path from 'node:path';
import { ConfigError, configFilePath, intEnv, jobledgerHome, requireEnv } from '@jobledger/runtime';

export interface KeyserverConfig {
  home: string;
  pkiDir: string;
  host: string;
  port: number;
  stream: string;
  masterConfigFile: string;
  /** Where key events are appended (`JOBLEDGER_NATS_URL`, with `JOBLEDGER_NATS_CREDS` and `JOBLEDGER_NATS_CA`). */
  natsUrl: string;
  natsAuth: { credsFile?: string; caFile?: string };
  logFile?: string;
  logLevel: string;
  readyFile?: string;
}

/** Reads the keyserver's settings from the environment; throws ConfigError naming the bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): KeyserverConfig {
  const home = jobledgerHome(env);
  const port = intEnv(env, 'JOBLEDGER_KEYSERVER_PORT', 4506);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigError(`JOBLEDGER_KEYSERVER_PORT must be a port number, got '${env.JOBLEDGER_KEYSERVER_PORT}'`);
  return {
    home,
    pkiDir: path.join(home, 'pki'),
    host: env.JOBLEDGER_KEYSERVER_HOST || '127.0.0.1',
    port,
    stream: env.JOBLEDGER_STREAM || 'LEDGER',
    masterConfigFile: configFilePath('master', home, env),
    natsUrl: requireEnv(env, 'JOBLEDGER_NATS_URL'),
    natsAuth: { credsFile: env.JOBLEDGER_NATS_CREDS || undefined, caFile: env.JOBLEDGER_NATS_CA || undefined },
    logFile: env.JOBLEDGER_LOG_FILE || undefined,
    logLevel: env.JOBLEDGER_LOG_LEVEL ?? 'info',
    readyFile: env.JOBLEDGER_READY_FILE || undefined,
  };
}
