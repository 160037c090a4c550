import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { credsAuthenticator } from '@nats-io/transport-node';
import { inboxPrefix } from '@jobledger/core';
import { credsUserKey } from '@jobledger/runtime';
import { expect } from 'vitest';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI_BIN = path.join(REPO_ROOT, 'packages/cli/bin/jobledger.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A throw-away `$JOBLEDGER_HOME` for one test file, and a way to run the CLI in it. */
export class CliHome {
  readonly root: string;
  constructor(prefix = 'jobledger-e2e-') {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    fs.chmodSync(this.root, 0o755);
  }

  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, JOBLEDGER_HOME: this.root, ...extra };
    // The ledger under test is the one `up` records in this home, never the caller's.
    if (!('JOBLEDGER_NATS_URL' in extra)) delete env.JOBLEDGER_NATS_URL;
    if (!('DATABASE_URL' in extra)) delete env.DATABASE_URL;
    delete env.FORCE_COLOR;
    return env;
  }

  run(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [CLI_BIN, ...args],
        { env: this.env(opts.env), cwd: REPO_ROOT, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  }

  /** The pids `up` recorded, and the ledger's PostgreSQL URL, once `up` ran. */
  pids = new Map<string, number>();
  databaseUrl = '';

  /** `up --detach --agents <ids>`: must succeed silently; records the pids and the database URL. */
  async up(ids: readonly string[], opts: { env?: Record<string, string> } = {}): Promise<CliResult> {
    const up = await this.run(['up', '--detach', '--agents', ids.join(',')], { env: opts.env, timeoutMs: 180_000 });
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    this.pids = this.recordedPids();
    const url = await this.run(['db', 'url']);
    expect(url.code).toBe(0);
    this.databaseUrl = url.stdout.trim();
    return up;
  }

  /** `down`: must succeed and leave none of the recorded processes running; then removes the home. */
  async downAndRemove(): Promise<void> {
    const down = await this.run(['down']);
    expect(down.code).toBe(0);
    for (const [name, pid] of this.pids) expect(alive(pid), `${name} (pid ${pid}) still running after down`).toBe(false);
    this.remove();
  }

  /** One query on the ledger's database (after `up`). */
  async query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.databaseUrl });
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  /**
   * Connection options for a test that talks to this home's nats-server itself: the admin
   * credentials and the master's CA (the server refuses anyone without credentials).
   */
  natsOptions(): { servers: string[]; authenticator: ReturnType<typeof credsAuthenticator>; inboxPrefix: string; tls: { caFile: string } } {
    const state = JSON.parse(fs.readFileSync(path.join(this.root, 'state.json'), 'utf8')) as { natsUrl: string };
    const creds = fs.readFileSync(path.join(this.root, 'pki', 'admin.creds'), 'utf8');
    return {
      servers: state.natsUrl.split(','), // a cluster's nodes
      authenticator: credsAuthenticator(new TextEncoder().encode(creds)),
      inboxPrefix: inboxPrefix(credsUserKey(creds)),
      tls: { caFile: path.join(this.root, 'pki', 'ca.pem') },
    };
  }

  /** Pids recorded under `run/` (name → pid). */
  recordedPids(): Map<string, number> {
    const dir = path.join(this.root, 'run');
    const out = new Map<string, number>();
    if (!fs.existsSync(dir)) return out;
    for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.pid'))) {
      out.set(f.slice(0, -4), Number(fs.readFileSync(path.join(dir, f), 'utf8').split(' ')[0]));
    }
    return out;
  }

  remove(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** Alive and not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
