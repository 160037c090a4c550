import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// src/supervisor/ and dist/supervisor/ are both two levels below packages/cli.
const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

export type ServiceKind = 'dispatcher' | 'projector' | 'agent' | 'keyserver' | 'api';

export function serviceEntry(kind: ServiceKind): string {
  return path.join(REPO_ROOT, 'services', kind, 'dist', 'main.js');
}

export interface ServiceSpec {
  /** Unique name: pid file, ready file and log file are named after it. */
  name: string;
  kind: ServiceKind;
  env: Record<string, string>;
}

export interface RunningService {
  spec: ServiceSpec;
  child: ChildProcess;
  readyFile: string;
  logFile: string;
}

/** An agent process's V8 old-generation limit, in MB (`JOBLEDGER_AGENT_HEAP_MB`). */
const AGENT_HEAP_MB = 512;

/**
 * Node's flags for a service. An agent process gets young-generation semi-spaces of 8 MB (16 by
 * default) and a 512 MB heap limit instead of one sized to the machine's memory: its live heap is
 * about 22 MB at 250 ids, but under a limit of gigabytes V8 let garbage pile up to 140–175 MB RSS
 * before collecting it; with these, 108–115 MB (`npm run bench`, scale). A process that outgrows
 * the limit exits ("heap out of memory" in its log) and is restarted; its running jobs are
 * recorded as lost.
 */
export function nodeFlags(kind: ServiceKind, env: NodeJS.ProcessEnv): string[] {
  if (kind !== 'agent') return [];
  const raw = env.JOBLEDGER_AGENT_HEAP_MB;
  const heap = raw === undefined || raw === '' ? AGENT_HEAP_MB : Number(raw);
  if (!Number.isInteger(heap) || heap < 64) {
    throw new ServiceStartError(`JOBLEDGER_AGENT_HEAP_MB must be a whole number of megabytes, at least 64, got '${raw}'`);
  }
  return ['--max-semi-space-size=8', `--max-old-space-size=${heap}`];
}

/** Starts a service as a child process, its output appended to its log file. */
export function spawnService(spec: ServiceSpec, dirs: { runDir: string; logDir: string }, baseEnv: NodeJS.ProcessEnv): RunningService {
  const readyFile = path.join(dirs.runDir, `${spec.name}.ready`);
  const logFile = path.join(dirs.logDir, `${spec.name}.log`);
  fs.rmSync(readyFile, { force: true });
  fs.mkdirSync(dirs.logDir, { recursive: true });
  const out = fs.openSync(logFile, 'a');
  const env = { ...baseEnv, ...spec.env, JOBLEDGER_LOG_FILE: logFile, JOBLEDGER_READY_FILE: readyFile };
  const child = spawn(process.execPath, [...nodeFlags(spec.kind, env), serviceEntry(spec.kind)], {
    env,
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  return { spec, child, readyFile, logFile };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ServiceStartError extends Error {
  override readonly name = 'ServiceStartError';
  readonly retryable = false;
}

/** Resolves when the service has written its ready file; rejects if it exits first. */
export async function waitReady(svc: RunningService, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (fs.existsSync(svc.readyFile)) return;
    if (svc.child.exitCode !== null || svc.child.signalCode !== null) {
      throw new ServiceStartError(`${svc.spec.name} exited during start-up (see ${svc.logFile}):\n${tail(svc.logFile)}`);
    }
    await sleep(25);
  }
  throw new ServiceStartError(`${svc.spec.name} was not ready after ${timeoutMs / 1000} s (see ${svc.logFile}):\n${tail(svc.logFile)}`);
}

export function tail(file: string, lines = 15): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
