import os from 'node:os';
import path from 'node:path';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly retryable = false;
}

/** Reads a required variable, failing fast with its name. */
export function requireEnv(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (v === undefined || v === '') throw new ConfigError(`${name} is not set`);
  return v;
}

export function intEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ConfigError(`${name} must be a number, got '${v}'`);
  return n;
}

/** `$JOBLEDGER_HOME`, default `./.jobledger`. */
export function jobledgerHome(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.JOBLEDGER_HOME ?? '.jobledger');
}

/** Salt's master id: `JOBLEDGER_MASTER_ID`, else `id:` of master.yaml, else `<hostname>_master`. */
export function masterId(env: NodeJS.ProcessEnv = process.env, configuredId?: unknown): string {
  if (env.JOBLEDGER_MASTER_ID) return env.JOBLEDGER_MASTER_ID;
  if (typeof configuredId === 'string' && configuredId !== '') return configuredId;
  return `${os.hostname()}_master`;
}

/** The settings every service shares. */
export interface CommonConfig {
  natsUrl: string;
  /** `JOBLEDGER_NATS_CREDS` (a `.creds` file) and `JOBLEDGER_NATS_CA` (the master's CA). */
  natsAuth?: { credsFile?: string; caFile?: string };
  stream: string;
  home: string;
  logFile?: string;
  logLevel: string;
}

export function loadCommonConfig(env: NodeJS.ProcessEnv = process.env): CommonConfig {
  return {
    natsUrl: requireEnv(env, 'JOBLEDGER_NATS_URL'),
    natsAuth: { credsFile: env.JOBLEDGER_NATS_CREDS || undefined, caFile: env.JOBLEDGER_NATS_CA || undefined },
    stream: env.JOBLEDGER_STREAM ?? 'LEDGER',
    home: jobledgerHome(env),
    logFile: env.JOBLEDGER_LOG_FILE || undefined,
    logLevel: env.JOBLEDGER_LOG_LEVEL ?? 'info',
  };
}
