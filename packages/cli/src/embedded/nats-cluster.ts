// The local nats-servers of `up` / `master`: one server, or (`--cluster N`) N nodes on loopback
// as one JetStream cluster. Each node has its own store (`<storeDir>/node-<i>`), log and resolver
// directory; the nodes reach each other over routes that are authenticated twice (mutual TLS
// with certificates of the master's CA, and a route password) and name a JetStream domain.
// A node that dies is started again by its owner with `restart(i)`, on the same store and port.

import path from 'node:path';
import { freePort } from './process-support.js';
import { startNatsServer, type NatsServerHandle, type StartNatsServerOptions } from './nats-server.js';

export const CLUSTER_NAME = 'jobledger';
export const MAX_CLUSTER_NODES = 7;

export interface StartNatsNodesOptions {
  /** 1: one server on `storeDir`; more: a cluster, node i's store under `<storeDir>/node-<i>`. */
  nodes: number;
  storeDir: string;
  /** Node 1 logs to `nats-server.log`, node i to `nats-server-<i>.log`. */
  logDir: string;
  host?: string;
  /** Client port of the first node; the others (and every port when undefined) are free ones. */
  port?: number;
  /** The security block of node i (1-based): operator mode and TLS, its own resolver directory. */
  security: (node: number) => Promise<string>;
  /** Where each node's rendered config and ports file go; default: its store. Kept off the
   *  store, a node whose store's disk is full can still be started. Given, each store also
   *  keeps a ballast file (store-space.ts). */
  stateDir?: string;
  /** Route TLS and authorisation (cluster only). */
  routes?: { certFile: string; keyFile: string; caFile: string; secret: string };
}

export interface NatsNodes {
  /** Every node's client URL, comma-separated: what services and agents connect with. */
  url: string;
  servers: NatsServerHandle[];
  /** Starts node i (0-based) again on its store and its client port, after it died. */
  restart(index: number): Promise<NatsServerHandle>;
  stop(): Promise<void>;
}

/** The pid file and log names of node i (0-based): `nats-server`, then `nats-server-2`, … */
export const natsNodeName = (index: number): string => (index === 0 ? 'nats-server' : `nats-server-${index + 1}`);

function clusterBlock(index: number, routePorts: readonly number[], routes: NonNullable<StartNatsNodesOptions['routes']>): string {
  const q = JSON.stringify;
  const user = 'route';
  const peers = routePorts
    .filter((_, i) => i !== index)
    .map((port) => q(`nats-route://${user}:${encodeURIComponent(routes.secret)}@127.0.0.1:${port}`));
  return [
    `server_name: ${q(`${CLUSTER_NAME}-${index + 1}`)}`,
    `cluster {`,
    `  name: ${q(CLUSTER_NAME)}`,
    `  host: "127.0.0.1"`,
    `  port: ${routePorts[index]}`,
    `  authorization { user: ${q(user)}, password: ${q(routes.secret)}, timeout: 3 }`,
    `  tls { cert_file: ${q(routes.certFile)}, key_file: ${q(routes.keyFile)}, ca_file: ${q(routes.caFile)}, verify: true, timeout: 3 }`,
    `  routes: [${peers.join(', ')}]`,
    `}`,
  ].join('\n');
}

export async function startNatsNodes(opts: StartNatsNodesOptions): Promise<NatsNodes> {
  const n = opts.nodes;
  if (!Number.isInteger(n) || n < 1 || n > MAX_CLUSTER_NODES) throw new Error(`a cluster has 1 to ${MAX_CLUSTER_NODES} nodes, not ${n}`);
  if (n > 1 && !opts.routes) throw new Error('a cluster needs route credentials');
  const routePorts = n > 1 ? await Promise.all(Array.from({ length: n }, () => freePort())) : [];
  const nodeOptions = async (index: number, port: number | undefined): Promise<StartNatsServerOptions> => ({
    storeDir: n > 1 ? path.join(opts.storeDir, `node-${index + 1}`) : opts.storeDir,
    logFile: path.join(opts.logDir, `${natsNodeName(index)}.log`),
    ...(opts.stateDir
      ? { configFile: path.join(opts.stateDir, `${natsNodeName(index)}.conf`), portsFileDir: opts.stateDir, ballast: true }
      : {}),
    host: opts.host,
    port,
    security: await opts.security(index + 1),
    ...(n > 1 ? { cluster: { block: clusterBlock(index, routePorts, opts.routes!), domain: CLUSTER_NAME } } : {}),
  });

  const servers: NatsServerHandle[] = [];
  try {
    // The first node on the configured port, the others on free ones; all at once (a cluster
    // node waits for its peers before JetStream is up, not before it accepts clients).
    const started = await Promise.allSettled(
      Array.from({ length: n }, async (_, i) => startNatsServer(await nodeOptions(i, i === 0 ? opts.port : undefined))),
    );
    for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
  const ports = servers.map((s) => s.port);
  return {
    url: servers.map((s) => s.url).join(','),
    servers,
    restart: async (index) => {
      const server = await startNatsServer(await nodeOptions(index, ports[index]));
      servers[index] = server;
      return server;
    },
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}
