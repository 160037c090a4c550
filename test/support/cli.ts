import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
