import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import {
  configFilePath,
  migrateDatabase,
  natsServerList,
  openAgentsBucket,
  openProgressBucket,
  openLedger,
  readConfigFile,
  returnsStore,
  type NatsAuth,
} from '@jobledger/runtime';
import type * as Pki from '@jobledger/runtime/pki';
import { defaultAgentProcesses, expandIdList, IdListError, invalidAgentId, spreadIds } from '@jobledger/core';
import { ensureDatabaseRoles } from '../embedded/database-roles.js';
import { syncLedgerKeys } from './ledger-keys.js';
import { CLUSTER_NAME, MAX_CLUSTER_NODES, natsNodeName, startNatsNodes, type NatsNodes } from '../embedded/nats-cluster.js';
import { startPostgres, type PostgresHandle } from '../embedded/postgres.js';
import { homeLayout, readState, writeFileWhole, writeState, type HomeLayout } from '../home.js';
import { watchLocalNats } from '../supervisor/nats-store-watch.js';
import { isOurs, reapRecorded, removePid, terminate, writePid } from '../supervisor/pids.js';
import { spawnService, tail, waitReady, type RunningService, type ServiceSpec } from '../supervisor/services.js';

const BIN = fileURLToPath(new URL('../../bin/jobledger.js', import.meta.url));
const SUPERVISOR_MARKERS = { up: 'jobledger.js up', master: 'jobledger.js master' } as const;
export type MasterRoleCommand = keyof typeof SUPERVISOR_MARKERS;
const DATABASE = 'jobledger';

export interface UpOptions {
  agents?: string;
  /** How many agent processes host the ids (default: one per id up to 8 ids, then 4). */
  agentProcesses?: number;
  /** Also a standby projector and a second dispatcher (`up --standby`, `master --standby`). */
  standby?: boolean;
  /** Local nats-servers as one JetStream cluster, the ledger's stream and buckets replicated on each (`--cluster N`). */
  cluster?: number;
  detach?: boolean;
  /** `master`: the master side only (Salt's salt-master); `up` (default): with local agents. */
  role?: MasterRoleCommand;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The ids `up` hosts, as its summary prints them: all of them for a few, a count for a fleet. */
function describeAgents(groups: string[][]): string {
  const ids = groups.flat();
  if (ids.length <= 12) return ids.join(', ');
  return `${ids.slice(0, 3).join(', ')} … ${ids.at(-1)!} (${ids.length} ids in ${groups.length} processes)`;
}

/** `--agents`: ids and ranges (`web-[1-1000]`), each id once; an error names what is wrong. */
function parseAgentIds(agents: string | undefined): string[] {
  const ids = expandIdList(agents ?? os.hostname());
  for (const id of ids) {
    const bad = invalidAgentId(id);
    if (bad) throw new IdListError(`invalid id '${id.slice(0, 80)}': ${bad}`);
  }
  return ids;
}

/** `jobledger up` / `jobledger master`: the supervisor in the foreground, or (`--detach`) started in the background. */
export async function upCommand(opts: UpOptions): Promise<number> {
  const home = homeLayout();
  const role = opts.role ?? 'up';
  const nodes = opts.cluster ?? 1;
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_CLUSTER_NODES) {
    process.stderr.write(`jobledger ${role}: --cluster must be a whole number from 1 to ${MAX_CLUSTER_NODES}, got ${opts.cluster}\n`);
    return 1;
  }
  if (nodes > 1 && process.env.JOBLEDGER_NATS_URL) {
    process.stderr.write(
      `jobledger ${role}: --cluster starts local nats-servers; JOBLEDGER_NATS_URL names servers of your own (list every node there instead)\n`,
    );
    return 1;
  }
  let groups: string[][] = [];
  if (role === 'up') {
    try {
      const ids = parseAgentIds(opts.agents);
      const processes = opts.agentProcesses ?? defaultAgentProcesses(ids.length);
      if (!Number.isInteger(processes) || processes < 1)
        throw new IdListError(`--agent-processes must be a whole number ≥ 1, got ${processes}`);
      groups = spreadIds(ids, processes);
    } catch (err) {
      if (!(err instanceof IdListError)) throw err;
      process.stderr.write(`jobledger ${role}: ${err.message}\n`);
      return 1;
    }
  }
  const running = readState(home)?.supervisorPid;
  if (
    running !== undefined &&
    (isOurs(running, SUPERVISOR_MARKERS.up) || isOurs(running, SUPERVISOR_MARKERS.master) || isOurs(running, 'jobledger.js agent'))
  ) {
    process.stderr.write(`jobledger is already up under ${home.root} (supervisor pid ${running}); run \`npx jobledger down\` first\n`);
    return 1;
  }
  return opts.detach ? startDetached(home, opts) : supervise(home, role, groups, { standby: opts.standby ?? false, nodes });
}

async function startDetached(home: HomeLayout, opts: UpOptions): Promise<number> {
  fs.mkdirSync(home.logDir, { recursive: true });
  const readyFile = path.join(home.runDir, 'up.ready');
  fs.rmSync(readyFile, { force: true });
  const logFile = path.join(home.logDir, 'up.log');
  const out = fs.openSync(logFile, 'a');
  const args = [
    BIN,
    opts.role ?? 'up',
    ...(opts.agents ? ['--agents', opts.agents] : []),
    ...(opts.agentProcesses !== undefined ? ['--agent-processes', String(opts.agentProcesses)] : []),
    ...(opts.standby ? ['--standby'] : []),
    ...(opts.cluster !== undefined ? ['--cluster', String(opts.cluster)] : []),
  ];
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

/** Where the master listens: Salt's `interface`, `publish_port` (NATS) and `ret_port` (the keyserver) of master.yaml. */
export interface MasterListen {
  iface: string;
  publishPort?: number;
  retPort?: number;
  /** master.yaml has Salt's `rest_cherrypy:` section: the HTTP API runs too, at this URL. */
  api?: string;
}

export function masterListen(home: string, role: MasterRoleCommand, env: NodeJS.ProcessEnv = process.env): MasterListen {
  const file = configFilePath('master', home, env);
  const conf = readConfigFile(file);
  const port = (key: string, fallback: number | undefined): number | undefined => {
    const v = conf[key];
    if (v === undefined || v === null) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${file}: ${key} must be a port number, got ${JSON.stringify(v)}`);
    return n === 0 ? undefined : n;
  };
  const raw = conf.interface;
  if (raw !== undefined && raw !== null && typeof raw !== 'string')
    throw new Error(`${file}: interface must be an address, got ${JSON.stringify(raw)}`);
  const iface = raw ?? '127.0.0.1';
  // Salt's ports for the master; `up`, a one-host ledger, takes free ones unless told.
  const publishPort = port('publish_port', role === 'master' ? 4505 : undefined);
  const retPort = port('ret_port', publishPort !== undefined ? publishPort + 1 : undefined);
  const rest = conf.rest_cherrypy as Record<string, unknown> | null | undefined;
  const api =
    rest !== undefined && rest !== null
      ? `${rest.disable_ssl === true ? 'http' : 'https'}://${typeof rest.host === 'string' ? rest.host : '127.0.0.1'}:${String(rest.port)}`
      : undefined;
  return { iface, publishPort, retPort, ...(api !== undefined ? { api } : {}) };
}

async function freePort(host: string): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host === '0.0.0.0' || host === '::' ? undefined : host, () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** Local agents of `up`: keys made and accepted here, credentials beside them. */
async function localAgentCreds(
  pki: typeof Pki,
  pkiDir: string,
  name: string,
  ids: string[],
  stream: string,
): Promise<{ credsFile: string; group: string }> {
  const dir = path.join(pkiDir, 'local', name);
  const kp = pki.loadOrCreateAgentKey(dir);
  const store = new pki.KeyStore(pkiDir);
  for (const id of ids) store.put(id, 'accepted', kp.getPublicKey());
  const jwt = await pki.issueAgentJwt(pkiDir, { userPublicKey: kp.getPublicKey(), ids, stream });
  return { credsFile: pki.writeAgentCreds(dir, jwt, kp), group: pki.agentGroup(kp.getPublicKey()) };
}

/** Before a local agent restarts: fresh credentials if its ids are still accepted; else they wait as pending keys. */
async function reissueLocalAgentCreds(
  pki: typeof Pki,
  pkiDir: string,
  name: string,
  ids: string[],
  stream: string,
  syncKeys: (ids: readonly string[]) => Promise<unknown>,
): Promise<boolean> {
  const dir = path.join(pkiDir, 'local', name);
  const kp = pki.loadOrCreateAgentKey(dir);
  const store = new pki.KeyStore(pkiDir);
  let accepted = true;
  for (const id of ids) {
    const rec = store.get(id);
    if (rec === undefined) store.put(id, 'pending', kp.getPublicKey());
    if (rec?.state !== 'accepted' || rec.publicKey !== kp.getPublicKey()) accepted = false;
  }
  if (!accepted) return false;
  await syncKeys(ids);
  const jwt = await pki.issueAgentJwt(pkiDir, { userPublicKey: kp.getPublicKey(), ids, stream });
  pki.writeAgentCreds(dir, jwt, kp);
  return true;
}

/** Runs everything until SIGTERM/SIGINT, restarting a service that dies. */
async function supervise(
  home: HomeLayout,
  role: MasterRoleCommand,
  agentGroups: string[][],
  { standby, nodes }: { standby: boolean; nodes: number },
): Promise<number> {
  for (const d of [home.root, home.runDir, home.logDir]) fs.mkdirSync(d, { recursive: true });
  const log = (msg: string) => process.stdout.write(`${new Date().toISOString()} ${msg}\n`);

  // A previous run killed with SIGKILL leaves processes and pid files behind.
  const reaped = await reapRecorded(home.runDir, [process.pid]);
  for (const r of reaped) log(`stopped ${r.name} (pid ${r.pid}) left over from an earlier run`);
  fs.rmSync(path.join(home.runDir, 'up.ready'), { force: true });
  writePid(home.runDir, { name: 'supervisor', pid: process.pid, marker: SUPERVISOR_MARKERS[role] });

  let nats: NatsNodes | undefined;
  let storeWatch: { stop(): Promise<void> } | undefined;
  let postgres: PostgresHandle | undefined;
  const services = new Map<string, RunningService>();
  let stopping = false;

  const shutdown = async () => {
    stopping = true;
    await storeWatch?.stop();
    await Promise.all([...services.values()].map((s) => (s.child.pid ? terminate(s.child.pid) : Promise.resolve())));
    for (const s of services.values()) removePid(home.runDir, s.spec.name);
    if (postgres) await postgres.stop();
    removePid(home.runDir, 'postgres');
    if (nats) await nats.stop();
    for (let i = 0; i < nodes; i++) removePid(home.runDir, natsNodeName(i));
    const state = readState(home);
    if (state) writeState(home, { ...state, supervisorPid: undefined });
    removePid(home.runDir, 'supervisor');
    fs.rmSync(path.join(home.runDir, 'up.ready'), { force: true });
  };

  // A nats-server node that dies is started again on its store and port; clients reconnect to it.
  const superviseNatsNode = (cluster: NatsNodes, index: number, pid: number) => {
    const name = natsNodeName(index);
    writePid(home.runDir, { name, pid, marker: 'nats-server' });
    log(`${name} ${cluster.servers[index]!.url} (pid ${pid})`);
    void cluster.servers[index]!.exited.then(function restartLater(): void {
      if (stopping) return;
      log(`${name} exited; restarting in 1 s`);
      setTimeout(() => {
        if (stopping) return;
        cluster.restart(index).then(
          (server) => {
            if (stopping) void server.stop();
            else superviseNatsNode(cluster, index, server.pid);
          },
          (err: unknown) => {
            log(`${name} did not start again: ${(err as Error).message.split('\n')[0]}`);
            restartLater();
          },
        );
      }, 1000);
    });
  };

  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });

  try {
    const previous = readState(home);
    const stream = process.env.JOBLEDGER_STREAM || 'LEDGER';
    const listen = masterListen(home.root, role);
    const pkiDir = path.join(home.root, 'pki');
    const pki = await import('@jobledger/runtime/pki');
    const masterPki = await pki.ensureMasterPki(pkiDir, { stream, hosts: pki.serverHostNames(listen.iface) });
    const files = pki.pkiFiles(pkiDir);
    let natsUrl = process.env.JOBLEDGER_NATS_URL;
    // Each role's credentials; against a NATS of the operator's own, the ones it was given.
    const envAuth: NatsAuth = {
      credsFile: process.env.JOBLEDGER_NATS_CREDS || undefined,
      caFile: process.env.JOBLEDGER_NATS_CA || undefined,
    };
    const roleAuth = (r: Pki.MasterRole): NatsAuth => (nats ? { credsFile: files.creds(r), caFile: files.ca } : envAuth);
    if (!natsUrl) {
      const started = await startNatsNodes({
        nodes,
        storeDir: home.natsDir,
        logDir: home.logDir,
        stateDir: home.runDir,
        host: listen.iface,
        port: listen.publishPort,
        // One server keeps the resolver directory it always had; a node of a cluster, its own.
        security: (node) =>
          pki.natsSecurityBlock(masterPki, nodes > 1 ? { resolverDir: path.join(files.resolverDir, `node-${node}`) } : {}),
        routes: {
          certFile: masterPki.serverCertFile,
          keyFile: masterPki.serverKeyFile,
          caFile: masterPki.caFile,
          secret: pki.clusterRouteSecret(pkiDir),
        },
      });
      nats = started;
      started.servers.forEach((server, i) => superviseNatsNode(started, i, server.pid));
      natsUrl = started.url;
      storeWatch = await watchLocalNats(started, { credsFile: files.creds('admin'), caFile: files.ca }, log);
    }
    // The stream and the buckets are made here, with the admin credential; the services only
    // open them. A new cluster answers once it has elected its JetStream leader.
    const setupUrl = natsUrl;
    const replicas = ledgerReplicas(nodes, process.env.JOBLEDGER_NATS_URL);
    await retryUntil('the JetStream cluster to answer', 60_000, async () => {
      const admin = await openLedger({
        natsUrl: setupUrl,
        stream,
        name: 'jobledger-master-setup',
        auth: roleAuth('admin'),
        replicas,
      });
      try {
        await openAgentsBucket(admin, replicas);
        await openProgressBucket(admin, replicas);
        await returnsStore(admin, replicas);
      } finally {
        await admin.nc.close();
      }
    });
    let databaseUrl = process.env.DATABASE_URL;
    // The dispatcher only reads: the SELECT-only role where there is one (the embedded PostgreSQL).
    let readOnlyDatabaseUrl: string | undefined;
    if (!databaseUrl) {
      const previousPort = previous?.databaseUrl ? Number(new URL(previous.databaseUrl).port) : undefined;
      postgres = await startPostgres({
        dataDir: home.pgDataDir,
        port: previousPort && (await portFree(previousPort)) ? previousPort : undefined,
        logFile: path.join(home.logDir, 'postgres.log'),
      });
      writePid(home.runDir, { name: 'postgres', pid: postgres.pid, marker: 'postgres' });
      // The superuser only makes the database and the roles; everything else uses them.
      const roles = await ensureDatabaseRoles(await ensureDatabase(postgres.url), pkiDir);
      databaseUrl = roles.ownerUrl;
      readOnlyDatabaseUrl = roles.readerUrl;
      log(`postgresql 127.0.0.1:${postgres.port} (pid ${postgres.pid})`);
    }
    await migrateDatabase(databaseUrl);
    const retPort = listen.retPort ?? (await freePort(listen.iface));
    const cliAuth = roleAuth('cli');
    writeState(home, {
      natsUrl,
      databaseUrl,
      ...(readOnlyDatabaseUrl ? { readOnlyDatabaseUrl } : {}),
      stream,
      supervisorPid: process.pid,
      role,
      natsCredsFile: cliAuth.credsFile,
      natsCaFile: cliAuth.caFile,
      interface: listen.iface,
      retPort,
      fingerprint: masterPki.fingerprint,
    });

    const common = { JOBLEDGER_NATS_URL: natsUrl, DATABASE_URL: databaseUrl, JOBLEDGER_HOME: home.root, JOBLEDGER_STREAM: stream };
    const authEnv = (auth: NatsAuth): Record<string, string> => ({
      ...(auth.credsFile ? { JOBLEDGER_NATS_CREDS: auth.credsFile } : {}),
      ...(auth.caFile ? { JOBLEDGER_NATS_CA: auth.caFile } : {}),
    });
    const agentSpecs: ServiceSpec[] = [];
    const localAgents = new Map<string, () => Promise<boolean>>();
    for (const [i, group] of agentGroups.entries()) {
      const name = `agent-${i + 1}`;
      const local = nats ? await localAgentCreds(pki, pkiDir, name, group, stream) : undefined;
      if (local)
        localAgents.set(name, () =>
          reissueLocalAgentCreds(pki, pkiDir, name, group, stream, (ids) =>
            syncLedgerKeys(pki, pkiDir, { natsUrl, stream, auth: cliAuth }, ids),
          ),
        );
      agentSpecs.push({
        name,
        kind: 'agent',
        env: {
          ...common,
          ...(local
            ? { ...authEnv({ credsFile: local.credsFile, caFile: files.ca }), JOBLEDGER_AGENT_GROUP: local.group }
            : authEnv(envAuth)),
          JOBLEDGER_AGENT_IDS: group.join(','),
        },
      });
    }
    // The local agents' keys are in the ledger before they append anything signed with them.
    await syncLedgerKeys(pki, pkiDir, { natsUrl, stream, auth: cliAuth });
    const dispatcherEnv = {
      ...common,
      ...(readOnlyDatabaseUrl ? { DATABASE_URL: readOnlyDatabaseUrl } : {}),
      ...authEnv(roleAuth('dispatcher')),
    };
    const projectorEnv = { ...common, ...authEnv(roleAuth('projector')) };
    const specs: ServiceSpec[] = [
      { name: 'dispatcher', kind: 'dispatcher', env: dispatcherEnv },
      { name: 'projector', kind: 'projector', env: projectorEnv },
      // Spares: a second dispatcher in the queue group, a projector waiting for the lock (leadership.ts).
      ...(standby
        ? ([
            { name: 'dispatcher-2', kind: 'dispatcher', env: dispatcherEnv },
            { name: 'projector-standby', kind: 'projector', env: projectorEnv },
          ] satisfies ServiceSpec[])
        : []),
      {
        name: 'keyserver',
        kind: 'keyserver',
        env: {
          JOBLEDGER_NATS_URL: natsUrl,
          JOBLEDGER_HOME: home.root,
          JOBLEDGER_STREAM: stream,
          ...authEnv(roleAuth('keyserver')),
          JOBLEDGER_KEYSERVER_HOST: listen.iface,
          JOBLEDGER_KEYSERVER_PORT: String(retPort),
        },
      },
      // salt-api: when master.yaml has its rest_cherrypy: section (its port, host and TLS are there).
      ...(listen.api !== undefined
        ? ([
            {
              name: 'api',
              kind: 'api',
              env: { JOBLEDGER_NATS_URL: natsUrl, JOBLEDGER_HOME: home.root, JOBLEDGER_STREAM: stream, ...authEnv(roleAuth('api')) },
            },
          ] satisfies ServiceSpec[])
        : []),
      ...agentSpecs,
    ];
    const start = (spec: ServiceSpec) => {
      const svc = spawnService(spec, home, process.env);
      services.set(spec.name, svc);
      if (svc.child.pid) writePid(home.runDir, { name: spec.name, pid: svc.child.pid, marker: 'dist/main.js' });
      svc.child.once('exit', (code, signal) => {
        if (stopping || services.get(spec.name) !== svc) return;
        log(`${spec.name} exited (${signal ?? code}); restarting in 1 s`);
        const again = async (): Promise<void> => {
          if (stopping) return;
          // A local agent whose key was deleted or rejected was cut off: as Salt's minion, it
          // asks again and waits (Unaccepted) until its key is accepted; then it gets new credentials.
          const reissue = localAgents.get(spec.name);
          if (reissue && !(await reissue())) {
            setTimeout(() => void again(), 2000);
            return;
          }
          start(spec);
        };
        setTimeout(() => void again(), 1000);
      });
      return svc;
    };
    await Promise.all(specs.map((s) => waitReady(start(s))));

    const summary =
      `jobledger ${role === 'master' ? 'master is' : 'is'} up under ${home.root}\n` +
      `  nats:       ${natsUrl}${nodes > 1 ? ` (cluster '${CLUSTER_NAME}' of ${nodes} nodes, R${replicas})` : replicas > 1 ? ` (R${replicas})` : ''}\n` +
      `  keys:       https://${listen.iface}:${retPort} (master_finger: '${masterPki.fingerprint}')\n` +
      `  postgresql: ${redact(databaseUrl)}\n` +
      (listen.api !== undefined ? `  api:        ${listen.api} (salt-api, rest_cherrypy)\n` : '') +
      (role === 'up' ? `  agents:     ${describeAgents(agentGroups)}\n` : '');
    // Whole: the detached caller polls for the name and prints what it reads.
    writeFileWhole(path.join(home.runDir, 'up.ready'), summary);
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

/** Calls `fn` until it succeeds, for at most `ms`; the last error says what did not answer. */
async function retryUntil(what: string, ms: number, fn: () => Promise<void>): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}: ${(err as Error).message}`, { cause: err });
      await sleep(500);
    }
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

/** JetStream keeps at most this many copies of a stream, whatever the cluster's size. */
const MAX_REPLICAS = 5;

/**
 * How many copies of the stream and the buckets to ask for when they are made: one per local
 * node, or, against servers of the operator's own, JOBLEDGER_REPLICAS or else one per server listed.
 */
export function ledgerReplicas(localNodes: number, externalUrl: string | undefined): number {
  if (!externalUrl) return Math.min(localNodes, MAX_REPLICAS);
  const asked = Number(process.env.JOBLEDGER_REPLICAS);
  const n = Number.isInteger(asked) && asked > 0 ? asked : natsServerList(externalUrl).length;
  return Math.min(Math.max(n, 1), MAX_REPLICAS);
}
