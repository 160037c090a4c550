import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jobEnv } from '../processes.js';
import type { BoundArgs } from './signature.js';
import { CommandExecutionError, ProcessSignalledError, type ExecContext, type ExecModule } from './types.js';

/** Output kept per stream; anything beyond is read and dropped. */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;
/** After SIGTERM to a cancelled job's process group, SIGKILL follows this much later. */
const KILL_AFTER_MS = 2_000;

export interface ShellRun {
  pid: number;
  retcode: number;
  stdout: string;
  stderr: string;
}

interface ShellOptions {
  cmd: string;
  cwd: unknown;
  env: unknown;
  stdin: unknown;
  timeout: unknown;
  rstrip: unknown;
  /** The shell that runs `cmd` (Salt's `shell`, default `/bin/sh`). */
  shell: string;
  /** stderr into the same pipe as stdout, interleaved (Salt's `redirect_stderr`). */
  mergeStderr: boolean;
}

/** Python's `str()` of a published value, as it appears in Salt's messages. */
function text(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function envMapping(env: unknown): Record<string, string> {
  if (env === null || env === undefined || env === '') return {};
  const parts = Array.isArray(env) ? env : [env];
  const out: Record<string, string> = {};
  for (const part of parts) {
    if (typeof part !== 'object' || part === null || Array.isArray(part)) {
      throw new CommandExecutionError("Invalid 'env' argument: it must be a mapping of variable names to values");
    }
    for (const [k, v] of Object.entries(part as Record<string, unknown>)) out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

function signalNumber(name: NodeJS.Signals): number {
  return os.constants.signals[name] ?? 0;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

/**
 * Runs `<shell> -c <cmd>` (`/bin/sh` by default) in its own process group (so a cancel reaches everything it started).
 * Exit by a signal the job did not ask for → ProcessSignalledError (no return, as when Salt's
 * job process is killed); Salt's `timeout` → its "Timed out" text and retcode 1.
 */
export async function runShell(o: ShellOptions, ctx: ExecContext): Promise<ShellRun> {
  const cmd = text(o.cmd);
  const cwd = o.cwd === null || o.cwd === undefined || o.cwd === '' ? os.homedir() : text(o.cwd);
  if (
    !path.isAbsolute(cwd) ||
    !(await stat(cwd).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  ) {
    throw new CommandExecutionError(`Specified cwd '${cwd}' either not absolute or does not exist`);
  }
  let timeoutS: number | undefined;
  if (o.timeout !== null && o.timeout !== undefined && o.timeout !== '') {
    timeoutS = Number(o.timeout);
    if (!Number.isFinite(timeoutS)) throw new CommandExecutionError(`Error: timeout ${text(o.timeout)} must be a number`);
    if (timeoutS <= 0) timeoutS = undefined;
  }
  const env = { ...process.env, ...envMapping(o.env), ...jobEnv(ctx) };
  const hasStdin = o.stdin !== null && o.stdin !== undefined;
  // With stderr merged, an outer shell points fd 2 at the stdout pipe and execs the real one:
  // same pid, the command string untouched.
  const argv = o.mergeStderr ? ['-c', 'exec 2>&1; exec "$0" -c "$1"', o.shell, cmd] : ['-c', cmd];

  ctx.signal.throwIfAborted();
  const child = spawn(o.mergeStderr ? '/bin/sh' : o.shell, argv, {
    cwd,
    env,
    detached: true,
    stdio: [hasStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const pid = child.pid;
  if (pid === undefined) {
    const err = await exited.then(
      () => new Error('no pid'),
      (e: Error) => e,
    );
    throw new CommandExecutionError(`Unable to run command '${cmd}': ${err.message}`);
  }
  ctx.spawned(pid);

  const collect = (stream: NodeJS.ReadableStream | null) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream?.on('data', (b: Buffer) => {
      if (size >= MAX_OUTPUT_BYTES) return;
      chunks.push(b);
      size += b.length;
    });
    return () => Buffer.concat(chunks).subarray(0, MAX_OUTPUT_BYTES).toString('utf8');
  };
  const stdout = collect(child.stdout);
  const stderr = collect(child.stderr);
  if (hasStdin) child.stdin?.end(typeof o.stdin === 'string' ? o.stdin : JSON.stringify(o.stdin));
  child.stdin?.on('error', () => {
    /* the command did not read its input */
  });

  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const terminate = (signal: NodeJS.Signals) => {
    killGroup(pid, signal);
    killTimer ??= setTimeout(() => killGroup(pid, 'SIGKILL'), KILL_AFTER_MS);
  };
  const onAbort = () => terminate('SIGTERM');
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const timer =
    timeoutS === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          killGroup(pid, 'SIGKILL');
        }, timeoutS * 1000);

  let result: { code: number | null; signal: NodeJS.Signals | null };
  try {
    result = await exited;
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    clearTimeout(timer);
    clearTimeout(killTimer);
  }

  if (timedOut) return { pid, retcode: 1, stdout: `${cmd} : Timed out after ${String(timeoutS)} seconds`, stderr: '' };
  if (result.signal !== null) throw new ProcessSignalledError(signalNumber(result.signal));
  const strip = o.rstrip === undefined || o.rstrip === null || Boolean(o.rstrip);
  const tidy = (s: string) => (strip ? s.trimEnd() : s);
  return { pid, retcode: result.code ?? 1, stdout: tidy(stdout()), stderr: tidy(stderr()) };
}

const CMD_PARAMS = [
  'cmd',
  { name: 'cwd', default: null },
  { name: 'stdin', default: null },
  { name: 'runas', default: null },
  { name: 'shell', default: '/bin/sh' },
  { name: 'env', default: null },
  { name: 'rstrip', default: true },
  { name: 'timeout', default: null },
] as const;

function shellOptions({ named }: BoundArgs, mergeStderr: boolean): ShellOptions {
  if (named.runas !== null && named.runas !== undefined && named.runas !== os.userInfo().username) {
    throw new CommandExecutionError(`User '${text(named.runas)}' is not available: runas is not supported by this agent`);
  }
  return {
    cmd: named.cmd as string,
    cwd: named.cwd,
    env: named.env,
    stdin: named.stdin,
    timeout: named.timeout,
    rstrip: named.rstrip,
    shell: typeof named.shell === 'string' && named.shell !== '' ? named.shell : '/bin/sh',
    mergeStderr,
  };
}

/** Salt's `cmd` module (`cmdmod`): each function runs its command in a child process. */
export const cmd: ExecModule = {
  run: {
    kind: 'shell',
    signature: { name: 'run', params: CMD_PARAMS, varkw: true },
    doc: 'Execute the passed command and return the output as a string (stdout and stderr interleaved).',
    run: async (args, ctx) => {
      const r = await runShell(shellOptions(args, true), ctx);
      return { return: r.stdout, retcode: r.retcode };
    },
  },
  run_all: {
    kind: 'shell',
    signature: { name: 'run_all', params: CMD_PARAMS, varkw: true },
    doc: 'Execute the passed command and return a dict of pid, retcode, stdout and stderr.',
    run: async (args, ctx) => {
      const r = await runShell(shellOptions(args, false), ctx);
      return { return: { pid: r.pid, retcode: r.retcode, stdout: r.stdout, stderr: r.stderr }, retcode: r.retcode };
    },
  },
  retcode: {
    kind: 'shell',
    signature: { name: 'retcode', params: CMD_PARAMS, varkw: true },
    doc: 'Execute a shell command and return the command’s return code.',
    run: async (args, ctx) => {
      const r = await runShell(shellOptions(args, true), ctx);
      return { return: r.retcode, retcode: r.retcode };
    },
  },
};
