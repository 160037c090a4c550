import path from 'node:path';
import { ConfigError, configFilePath, jobledgerHome, readConfigFile, requireEnv } from '@jobledger/runtime';
import { parseRestConfig, type RestConfig } from './rest-config.js';

export interface ApiConfig {
  home: string;
  masterConfigFile: string;
  rest: RestConfig;
  /** `JOBLEDGER_API_PORT`: overrides rest_cherrypy's `port` (tests: 0, any free port). */
  stream: string;
  natsUrl: string;
  natsAuth: { credsFile?: string; caFile?: string };
  /** Salt's `timeout` and `gather_job_timeout` (master.yaml), seconds. */
  timeout: number;
  gatherJobTimeout: number;
  enabledClients?: string[];
  logFile?: string;
  logLevel: string;
  readyFile?: string;
}

const positive = (v: unknown, fallback: number, name: string, file: string): number => {
  const n = v === undefined || v === null ? fallback : Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`${name} in ${file} must be a positive number of seconds`);
  return n;
};

/** Reads the API's settings: the environment, and master.yaml's `rest_cherrypy:` and `external_auth:`. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const home = jobledgerHome(env);
  const file = configFilePath('master', home, env);
  const doc = readConfigFile(file);
  const rest = parseRestConfig(doc, file);
  if (rest === undefined) throw new ConfigError(`${file} has no rest_cherrypy: section (its port, and host) for the API`);
  if (env.JOBLEDGER_API_PORT !== undefined && env.JOBLEDGER_API_PORT !== '') {
    const port = Number(env.JOBLEDGER_API_PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new ConfigError(`JOBLEDGER_API_PORT must be a port number, got '${env.JOBLEDGER_API_PORT}'`);
    rest.port = port;
  }
  const enabled = doc.netapi_enable_clients;
  if (enabled !== undefined && enabled !== null && !(Array.isArray(enabled) && enabled.every((c) => typeof c === 'string'))) {
    throw new ConfigError(`netapi_enable_clients in ${file} must be a list of client names`);
  }
  return {
    home,
    masterConfigFile: file,
    rest,
    stream: env.JOBLEDGER_STREAM || 'LEDGER',
    natsUrl: requireEnv(env, 'JOBLEDGER_NATS_URL'),
    natsAuth: { credsFile: env.JOBLEDGER_NATS_CREDS || undefined, caFile: env.JOBLEDGER_NATS_CA || undefined },
    timeout: positive(doc.timeout, 5, 'timeout', file),
    gatherJobTimeout: positive(doc.gather_job_timeout, 10, 'gather_job_timeout', file),
    ...(Array.isArray(enabled) ? { enabledClients: enabled } : {}),
    logFile: env.JOBLEDGER_LOG_FILE || undefined,
    logLevel: env.JOBLEDGER_LOG_LEVEL ?? 'info',
    readyFile: env.JOBLEDGER_READY_FILE || undefined,
  };
}

export const configDir = (config: ApiConfig) => path.dirname(config.masterConfigFile);
