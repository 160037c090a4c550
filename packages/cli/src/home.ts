import fs from 'node:fs';
import path from 'node:path';
import { jobledgerHome } from '@jobledger/runtime/config';

/** What `up` records under `$JOBLEDGER_HOME` so later commands find the running ledger. */
export interface LedgerState {
  natsUrl: string;
  /** The owner of the read models (not a superuser). */
  databaseUrl: string;
  /** A role that may only SELECT (`db url --read-only`); the embedded PostgreSQL only. */
  readOnlyDatabaseUrl?: string;
  stream: string;
  supervisorPid?: number;
  /** What runs from this home: `up` (master and local agents), `master`, or `agent`. */
  role?: 'up' | 'master' | 'agent';
  /** The operator CLI's NATS credentials and the master's CA. */
  natsCredsFile?: string;
  natsCaFile?: string;
  /** Salt's `interface`, the keyserver's port (`ret_port`), the master's fingerprint. */
  interface?: string;
  retPort?: number;
  fingerprint?: string;
}

/** NATS and PostgreSQL endpoints, with the NATS credentials to use. */
export interface Endpoints {
  natsUrl: string;
  databaseUrl: string;
  stream: string;
  auth: { credsFile?: string; caFile?: string };
}

export interface HomeLayout {
  root: string;
  stateFile: string;
  runDir: string;
  logDir: string;
  natsDir: string;
  pgDataDir: string;
  agentsDir: string;
}

export function homeLayout(env: NodeJS.ProcessEnv = process.env): HomeLayout {
  const root = jobledgerHome(env);
  return {
    root,
    stateFile: path.join(root, 'state.json'),
    runDir: path.join(root, 'run'),
    logDir: path.join(root, 'logs'),
    natsDir: path.join(root, 'nats'),
    pgDataDir: path.join(root, 'pg', 'data'),
    agentsDir: path.join(root, 'agents'),
  };
}

export function readState(home: HomeLayout): LedgerState | undefined {
  try {
    return JSON.parse(fs.readFileSync(home.stateFile, 'utf8')) as LedgerState;
  } catch {
    return undefined;
  }
}

export function writeState(home: HomeLayout, state: LedgerState): void {
  fs.mkdirSync(home.root, { recursive: true });
  writeFileWhole(home.stateFile, JSON.stringify(state, null, 2) + '\n', 0o600);
}

/** Written to a temporary name, then renamed: whoever sees the file sees all of its content. */
export function writeFileWhole(file: string, text: string, mode?: number): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, text, mode === undefined ? undefined : { mode });
  fs.renameSync(tmp, file);
}

export class NotRunningError extends Error {
  override readonly name = 'NotRunningError';
  readonly retryable = false;
}

/** NATS and PostgreSQL of the ledger: the environment wins, else what `up` recorded. */
export function resolveEndpoints(env: NodeJS.ProcessEnv = process.env): Endpoints {
  const state = readState(homeLayout(env));
  const natsUrl = env.JOBLEDGER_NATS_URL || state?.natsUrl;
  const databaseUrl = env.DATABASE_URL || state?.databaseUrl;
  if (!natsUrl || !databaseUrl) {
    throw new NotRunningError(
      `jobledger is not running under ${homeLayout(env).root}: start it with \`npx jobledger up --detach\`, or set JOBLEDGER_NATS_URL and DATABASE_URL`,
    );
  }
  const fromEnv = Boolean(env.JOBLEDGER_NATS_URL);
  const auth = {
    credsFile: env.JOBLEDGER_NATS_CREDS || (fromEnv ? undefined : state?.natsCredsFile),
    caFile: env.JOBLEDGER_NATS_CA || (fromEnv ? undefined : state?.natsCaFile),
  };
  return { natsUrl, databaseUrl, stream: env.JOBLEDGER_STREAM || state?.stream || 'LEDGER', auth };
}
