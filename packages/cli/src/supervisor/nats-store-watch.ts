// Watches the stores of the local nats-servers for `up` / `master`: a full disk must cost
// refused publishes while it is full, and nothing once space returns.
//
// - A server is started with a `max_file_store` that fits the room left on its disk
//   (embedded/store-space.ts); once that is used up JetStream refuses publishes. When room has
//   come back (space freed, the filesystem grown) the server is restarted to take it: the
//   limit is only read at start.
// - Something else may fill the disk first; nats-server 2.9 then hangs its JetStream on the
//   failed write and answers nothing until it is killed. A disk found full has its ballast
//   deleted and its server killed (SIGKILL: a graceful stop would write, and hang), to start
//   again with a limit of what it holds and room for its own state: it reads, and refuses new
//   publishes. A JetStream that has not answered the probe for `hangAfterMs` is killed too.
// Either way the supervisor's restart of a dead node does the starting.

import { connectNats, type NatsAuth } from '@jobledger/runtime';
import { natsNodeName, type NatsNodes } from '../embedded/nats-cluster.js';
import type { NatsServerHandle } from '../embedded/nats-server.js';
import { dropBallast, megabytes, storeSpace } from '../embedded/store-space.js';

export interface WatchedNode {
  name: string;
  /** The server running now (replaced when it is restarted). */
  current(): NatsServerHandle;
  /** Whether its JetStream answers (an API call within a few seconds); none: not probed. */
  probe?: () => Promise<boolean>;
}

export interface StoreWatchOptions {
  nodes: WatchedNode[];
  log: (msg: string) => void;
  intervalMs?: number;
  /** How long JetStream may stay silent before its server is killed. */
  hangAfterMs?: number;
}

/** Used at least this share of its limit: refusals are near, and a restart may give it room. */
const NEARLY_FULL = 0.9;

interface NodeState {
  pid: number;
  silentSince?: number;
  warnedFull: boolean;
  acting: boolean;
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export function watchNatsStores(opts: StoreWatchOptions): { stop(): void } {
  const intervalMs = opts.intervalMs ?? 1_000;
  const hangAfterMs = opts.hangAfterMs ?? 20_000;
  const states = new Map<string, NodeState>();
  let stopped = false;

  const check = async (node: WatchedNode): Promise<void> => {
    const server = node.current();
    let st = states.get(node.name);
    if (!st || st.pid !== server.pid) {
      st = { pid: server.pid, warnedFull: false, acting: false };
      states.set(node.name, st);
    }
    if (st.acting) return;
    const space = await storeSpace(server.storeDir);
    if (space.free < Math.min(1024 * 1024, space.reserve / 4)) {
      const freed = await dropBallast(server.storeDir);
      if (freed > 0) {
        st.acting = true;
        opts.log(
          `${node.name}: its store's disk is full (${megabytes(space.free)} free); releasing the ${megabytes(freed)} kept in reserve ` +
            'and restarting it: it refuses new publishes until the disk has room again',
        );
        kill(st.pid);
        return;
      }
    }
    const nearlyFull = space.used >= server.maxFileStore * NEARLY_FULL;
    if (nearlyFull && !st.warnedFull) {
      st.warnedFull = true;
      opts.log(
        `${node.name}: its store holds ${megabytes(space.used)} of the ${megabytes(server.maxFileStore)} it may hold ` +
          `(${megabytes(space.free)} free on its disk); new publishes are refused once it is full`,
      );
    }
    // Room for the ballast again and for more than a little more data.
    const grown = space.limit - server.maxFileStore >= Math.max(2 * space.reserve, server.maxFileStore * 0.1);
    if (nearlyFull && grown) {
      st.acting = true;
      opts.log(`${node.name}: its disk has room again (${megabytes(space.free)} free); restarting it to use it`);
      await server.stop();
      return;
    }
    if (!node.probe) return;
    if (await node.probe()) {
      st.silentSince = undefined;
      return;
    }
    st.silentSince ??= Date.now();
    const silentMs = Date.now() - st.silentSince;
    if (silentMs >= hangAfterMs && node.current().pid === st.pid) {
      st.acting = true;
      opts.log(
        `${node.name}: JetStream has not answered for ${Math.round(silentMs / 1000)} s ` +
          `(${megabytes(space.free)} free on its store's disk); killing it to start it again`,
      );
      kill(st.pid);
    }
  };

  const loop = async () => {
    while (!stopped) {
      await Promise.all(
        opts.nodes.map((n) => check(n).catch((err: unknown) => opts.log(`${n.name}: store check failed: ${(err as Error).message}`))),
      );
      await new Promise((r) => setTimeout(r, intervalMs).unref());
    }
  };
  void loop();
  return {
    stop: () => {
      stopped = true;
    },
  };
}

/**
 * Watches the local nodes of `up` / `master`. One server is also probed for a hung JetStream
 * (an account-info request with `auth`); the nodes of a cluster are not, as a node without a
 * meta leader is silent too, for a good reason.
 */
export async function watchLocalNats(cluster: NatsNodes, auth: NatsAuth, log: (msg: string) => void): Promise<{ stop(): Promise<void> }> {
  const single = cluster.servers.length === 1;
  const nc = single
    ? await connectNats({
        servers: cluster.servers[0]!.url,
        auth,
        name: 'jobledger-supervisor',
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
      })
    : undefined;
  const probe = nc
    ? () =>
        nc.request('$JS.API.INFO', undefined, { timeout: 3_000 }).then(
          () => true,
          () => false,
        )
    : undefined;
  const watch = watchNatsStores({
    nodes: cluster.servers.map((_, i) => ({ name: natsNodeName(i), current: () => cluster.servers[i]!, ...(probe ? { probe } : {}) })),
    log,
  });
  return {
    stop: async () => {
      watch.stop();
      await nc?.close();
    },
  };
}
