import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrateDatabase } from '@jobledger/runtime';
import { startNatsServer, type NatsServerHandle } from '../embedded/nats-server.js';
import { startPostgres, type PostgresHandle } from '../embedded/postgres.js';
import { homeLayout, readState, writeState, type HomeLayout } from '../home.js';
import { isOurs, reapRecorded, removePid, terminate, writePid } from '../supervisor/pids.js';
import { spawnService, tail, waitReady, type RunningService, type ServiceSpec } from '../supervisor/services.js';

const BIN = fileURLToPath(new URL('../../bin/jobledger.js', import.meta.url));
const SUPERVISOR_MARKER = 'jobledger.js up';
const DATABASE = 'jobledger';

export interface UpOptions {
  agents?: string;
  detach?: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function parseAgentIds(agents: string | undefined): string[] {
  const ids = (agents ?? os.hostname())
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  return [...new Set(ids)];
}

/** `jobledger up`: the supervisor in the foreground, or (`--detach`) started in the background. */
export async function upCommand(opts: UpOptions): Promise<number> {
  const home = homeLayout();
  const running = readState(home)?.supervisorPid;
  if (running !== undefined && isOurs(running, SUPERVISOR_MARKER)) {
    process.stderr.write(`jobledger is already up under ${home.root} (supervisor pid ${running}); run \`npx jobledger down\` first\n`);
    return 1;
  }
  return opts.detach ? startDetached(home, opts) : supervise(home, parseAgentIds(opts.agents));
}

async function startDetached(home: HomeLayout, opts: UpOptions): Promise<number> {
  fs.mkdirSync(home.logDir, { recursive: true });
  const readyFile = path.join(home.runDir, 'up.ready');
  fs.rmSync(readyFile, { force: true });
  const logFile = path.join(home.logDir, 'up.log');
  const out = fs.openSync(logFile, 'a');
  const args = [BIN, 'up', ...(opts.agents ? ['--agents', opts.agents] : [])];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out], env: process.env });
  fs.closeSync(out);
  child.unref();
  const until = Date.now() + 180_000;
  while (Date.now() < until) {
    if (fs.existsSync(readyFile)) {
      process.stdout.write(fs.readFileSync(readyFile, 'utf8'));
      return 0;
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      process.stderr.write(`jobledger up failed (see ${logFile}):\n${tail(logFile, 25)}\n`);
      return 1;
    }
    await sleep(50);
  }
  process.stderr.write(`jobledger up was not ready after 180 s (see ${logFile})\n`);
  return 1;
}

async function ensureDatabase(adminUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (!rowCount) await client.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${DATABASE}`;
  return url.toString();
}

/** Runs everything until SIGTERM/SIGINT, restarting a service that dies. */
async function supervise(home: HomeLayout, agentIds: string[]): Promise<number> {
  for (const d of [home.root, home.runDir, home.logDir]) fs.mkdirSync(d, { recursive: true });
  const log = (msg: string) => process.stdout.write(`${new Date().toISOString()} ${msg}\n`);

  // A previous run killed with SIGKILL leaves processes and pid files behind.
  const reaped = await reapRecorded(home.runDir, [process.pid]);
  for (const r of reaped) log(`stopped ${r.name} (pid ${r.pid}) left over from an earlier run`);
  fs.rmSync(path.join(home.runDir, 'up.ready'), { force: true });
  writePid(home.runDir, { name: 'supervisor', pid: process.pid, marker: SUPERVISOR_MARKER });

  let nats: NatsServerHandle | undefined;
  let postgres: PostgresHandle | undefined;
  const services = new Map<string, RunningService>();
  let stopping = false;

  const shutdown = async () => {
    stopping = true;
    await Promise.all([...services.values()].map((s) => (s.child.pid ? terminate(s.child.pid) : Promise.resolve())));
    for (const s of services.values()) removePid(home.runDir, s.spec.name);
    if (postgres) await postgres.stop();
    removePid(home.runDir, 'postgres');
    if (nats) await nats.stop();
    removePid(home.runDir, 'nats-server');
    const state = readState(home);
    if (state) writeState(home, { ...state, supervisorPid: undefined });
    removePid(home.runDir, 'supervisor');
    fs.rmSync(path.join(home.runDir, 'up.ready'), { force: true });
  };

  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });

  try {
    const previous = readState(home);
    let natsUrl = process.env.JOBLEDGER_NATS_URL;
    if (!natsUrl) {
      nats = await startNatsServer({ storeDir: home.natsDir, logFile: path.join(home.logDir, 'nats-server.log') });
      writePid(home.runDir, { name: 'nats-server', pid: nats.pid, marker: 'nats-server' });
      natsUrl = nats.url;
      log(`nats-server ${natsUrl} (pid ${nats.pid})`);
    }
    let databaseUrl = process.env.DATABASE_URL;
    if (!databaseUrl) {
      const previousPort = previous?.databaseUrl ? Number(new URL(previous.databaseUrl).port) : undefined;
      postgres = await startPostgres({
        dataDir: home.pgDataDir,
        port: previousPort && (await portFree(previousPort)) ? previousPort : undefined,
        logFile: path.join(home.logDir, 'postgres.log'),
      });
      writePid(home.runDir, { name: 'postgres', pid: postgres.pid, marker: 'postgres' });
      databaseUrl = await ensureDatabase(postgres.url);
      log(`postgresql 127.0.0.1:${postgres.port} (pid ${postgres.pid})`);
    }
    await migrateDatabase(databaseUrl);
    const stream = process.env.JOBLEDGER_STREAM || 'LEDGER';
    writeState(home, { natsUrl, databaseUrl, stream, supervisorPid: process.pid });

    const common = { JOBLEDGER_NATS_URL: natsUrl, DATABASE_URL: databaseUrl, JOBLEDGER_HOME: home.root, JOBLEDGER_STREAM: stream };
    const specs: ServiceSpec[] = [
      { name: 'dispatcher', kind: 'dispatcher', env: common },
      { name: 'projector', kind: 'projector', env: common },
      ...agentIds.map((id, i): ServiceSpec => ({ name: `agent-${i + 1}`, kind: 'agent', env: { ...common, JOBLEDGER_AGENT_IDS: id } })),
    ];
    const start = (spec: ServiceSpec) => {
      const svc = spawnService(spec, home, process.env);
      services.set(spec.name, svc);
      if (svc.child.pid) writePid(home.runDir, { name: spec.name, pid: svc.child.pid, marker: 'dist/main.js' });
      svc.child.once('exit', (code, signal) => {
        if (stopping || services.get(spec.name) !== svc) return;
        log(`${spec.name} exited (${signal ?? code}); restarting in 1 s`);
        setTimeout(() => {
          if (!stopping) start(spec);
        }, 1000);
      });
      return svc;
    };
    await Promise.all(specs.map((s) => waitReady(start(s))));

    const summary =
      `jobledger is up under ${home.root}\n` +
      `  nats:       ${natsUrl}\n` +
      `  postgresql: ${redact(databaseUrl)}\n` +
      `  agents:     ${agentIds.join(', ')}\n`;
    fs.writeFileSync(path.join(home.runDir, 'up.ready'), summary);
    log('ready');
    const signal = await stopSignal;
    log(`${signal}: stopping`);
    await shutdown();
    log('stopped');
    return 0;
  } catch (err) {
    log(`start-up failed: ${(err as Error).message}`);
    await shutdown();
    return 1;
  }
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

async function portFree(port: number): Promise<boolean> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
