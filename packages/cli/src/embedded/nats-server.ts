// Runs a local nats-server (JetStream enabled) for `jobledger up` and the test suite.
//
// The configuration comes from the template infra/nats-server.conf; this module fills in the
// per-instance values (store dir, host, port, ports-file dir), writes the result and runs
// `nats-server -c <file>`. With port -1 the server picks a free port and reports it in
// `<ports_file_dir>/<executable>_<pid>.ports`; startup waits for that file and for the port to
// accept a TCP connection, and fails fast (with the server's log tail) if the process exits.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, openSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { canConnect, fileSize, readTail } from './process-support.js';
import { ensureBallast, storeSpace } from './store-space.js';

export interface StartNatsServerOptions {
  /** JetStream store directory; created if missing. Also holds the ports file and, by default,
   *  the rendered config and the log. */
  storeDir: string;
  /** Client port; undefined = a random free port chosen by the server. */
  port?: number;
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Server stdout/stderr are appended here; default `<storeDir>/nats-server.log`. */
  logFile?: string;
  /** Run in its own session so it outlives this process (daemon use). Otherwise the server is
   *  signalled (SIGTERM) when this process exits. */
  detached?: boolean;
  /** Where the rendered config is written; default `<storeDir>/nats-server.conf`. */
  configFile?: string;
  /** Keep a ballast file beside the store (store-space.ts), written before the limit is set when the disk has room. */
  ballast?: boolean;
  /** Where the server writes its ports file; default `storeDir`. Elsewhere, a server whose
   *  store's disk is full can still be started. */
  portsFileDir?: string;
  /** Configuration inserted as it is (operator mode and TLS: runtime's `natsSecurityBlock`); none = an open server. */
  security?: string;
  /** A node of a cluster: its server_name and cluster block, and the JetStream domain (nats-cluster.ts). */
  cluster?: { block: string; domain: string };
}

export interface NatsServerHandle {
  /** `nats://<host>:<port>` (127.0.0.1 when bound to all interfaces). */
  url: string;
  port: number;
  pid: number;
  /** The store directory and the `max_file_store` the server was started with (store-space.ts). */
  storeDir: string;
  maxFileStore: number;
  /** SIGTERM, wait for exit, SIGKILL after 5 s. Idempotent. */
  stop(): Promise<void>;
  /** Settles when the server process has exited (stopped, crashed or killed). */
  exited: Promise<void>;
}

const STARTUP_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

// src/embedded/ and dist/embedded/ are both two levels below packages/cli.
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The repository's infra/ directory (holds nats-server.conf and bootstrap.sh). */
export function infraDir(): string {
  return path.resolve(PACKAGE_ROOT, '..', '..', 'infra');
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of the nats-server binary: $NATS_SERVER_BIN, then $PATH, then /usr/sbin,
 *  /usr/local/bin, /usr/bin. Throws if none is found. */
export function natsServerBinary(): string {
  const override = process.env.NATS_SERVER_BIN;
  if (override) {
    if (isExecutableFile(override)) return path.resolve(override);
    throw new Error(`NATS_SERVER_BIN=${override} is not an executable file`);
  }
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const dir of [...dirs, '/usr/sbin', '/usr/local/bin', '/usr/bin']) {
    const candidate = path.join(dir, 'nats-server');
    if (isExecutableFile(candidate)) return path.resolve(candidate);
  }
  throw new Error(
    `nats-server not found on PATH or in /usr/sbin. Install it with ${path.join(infraDir(), 'bootstrap.sh')} ` +
      '(Debian/Ubuntu: apt-get install nats-server), or set NATS_SERVER_BIN.',
  );
}

/** Drops full-line comments (the template documents its placeholders in comments), then
 *  substitutes {{name}} placeholders; strings are inserted as quoted NATS strings. */
function renderConfig(template: string, values: Record<string, string | number | { raw: string }>): string {
  return template
    .split('\n')
    .filter((line) => !/^\s*(#|\/\/)/.test(line))
    .join('\n')
    .replace(/\{\{\s*([a-z_]+)\s*\}\}/g, (whole, name: string) => {
      const value = values[name];
      if (value === undefined) throw new Error(`infra/nats-server.conf: unknown placeholder ${whole}`);
      if (typeof value === 'object') return value.raw;
      return typeof value === 'number' ? String(value) : JSON.stringify(value);
    });
}

function connectHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '::1';
  return host;
}

/** Reads `<dir>/*_<pid>.ports` → client port, or undefined while it is not there yet. */
async function readPortsFile(dir: string, pid: number): Promise<number | undefined> {
  const suffix = `_${pid}.ports`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  const name = names.find((n) => n.endsWith(suffix));
  if (name === undefined) return undefined;
  try {
    // {"nats":["nats://127.0.0.1:4222"],"monitoring":[...],...}
    const parsed = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as { nats?: string[] };
    const first = parsed.nats?.[0];
    if (first === undefined) return undefined;
    const port = Number(new URL(first).port);
    return Number.isInteger(port) && port > 0 ? port : undefined;
  } catch {
    return undefined; // partially written
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function startNatsServer(opts: StartNatsServerOptions): Promise<NatsServerHandle> {
  const bin = natsServerBinary();
  const storeDir = path.resolve(opts.storeDir);
  const host = opts.host ?? '127.0.0.1';
  const detached = opts.detached ?? false;
  const configFile = path.resolve(opts.configFile ?? path.join(storeDir, 'nats-server.conf'));
  const logFile = path.resolve(opts.logFile ?? path.join(storeDir, 'nats-server.log'));

  const portsFileDir = path.resolve(opts.portsFileDir ?? storeDir);
  await mkdir(storeDir, { recursive: true });
  await mkdir(path.dirname(configFile), { recursive: true });
  await mkdir(path.dirname(logFile), { recursive: true });
  await mkdir(portsFileDir, { recursive: true });
  if (opts.ballast) await ensureBallast(storeDir);
  const { limit: maxFileStore } = await storeSpace(storeDir);

  const template = await readFile(path.join(infraDir(), 'nats-server.conf'), 'utf8');
  const config = renderConfig(template, {
    host,
    port: opts.port ?? -1,
    ports_file_dir: portsFileDir,
    store_dir: storeDir,
    max_file_store: maxFileStore,
    security: { raw: opts.security ?? '' },
    jetstream_domain: { raw: opts.cluster ? `domain: ${JSON.stringify(opts.cluster.domain)}` : '' },
    cluster: { raw: opts.cluster?.block ?? '' },
  });
  await writeFile(configFile, config);

  // stdout/stderr go to a file, never a pipe: a detached server must not die of SIGPIPE once
  // this process is gone.
  const logOffset = await fileSize(logFile);
  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(bin, ['-c', configFile], { detached, stdio: ['ignore', logFd, logFd] });
  } finally {
    closeSync(logFd);
  }

  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve();
    });
  });
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });

  const failure = async (reason: string): Promise<Error> => {
    const tail = await readTail(logFile, logOffset);
    return new Error(`nats-server (${bin} -c ${configFile}) ${reason}` + (tail ? `\n--- ${logFile} ---\n${tail}` : ''));
  };

  const stop = async (): Promise<void> => {
    if (exitInfo !== undefined || child.pid === undefined) return;
    child.kill('SIGTERM');
    const killTimer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      await exited;
    } finally {
      clearTimeout(killTimer);
    }
  };

  // Race: ports file + connectable port vs. process exit vs. timeout.
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let port: number | undefined;
  for (;;) {
    if (spawnError !== undefined) throw await failure(`could not be started: ${spawnError.message}`);
    if (exitInfo !== undefined) {
      const how = exitInfo.signal ? `signal ${exitInfo.signal}` : `code ${exitInfo.code}`;
      throw await failure(`exited during startup (${how})`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw await failure(`did not become ready within ${STARTUP_TIMEOUT_MS / 1000} s`);
    }
    if (child.pid !== undefined) {
      port ??= await readPortsFile(portsFileDir, child.pid);
      if (port !== undefined && (await canConnect(connectHost(host), port))) break;
    }
    await Promise.race([sleep(50), exited]);
  }
  const pid = child.pid;
  if (pid === undefined) throw await failure('has no pid'); // unreachable: pid set once spawned

  if (detached) {
    child.unref();
  } else {
    const onExit = () => {
      if (exitInfo === undefined) child.kill('SIGTERM');
    };
    process.once('exit', onExit);
    void exited.then(() => process.removeListener('exit', onExit));
  }

  const urlHost = connectHost(host);
  return {
    url: `${opts.security ? 'tls' : 'nats'}://${urlHost.includes(':') ? `[${urlHost}]` : urlHost}:${port}`,
    port,
    pid,
    storeDir,
    maxFileStore,
    stop,
    exited,
  };
}
