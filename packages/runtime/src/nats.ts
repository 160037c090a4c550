import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { AGENTS_BUCKET, PROGRESS_BUCKET, ledgerStreamConfig } from '@jobledger/core';
import { connectNats, type NatsAuth } from './nats-connect.js';

export interface Ledger {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
}

/**
 * Connects to NATS and makes sure the ledger stream exists (created if missing). With
 * `ensure: false` it only checks that it exists: what a role that may not create it does.
 */
export async function openLedger(opts: {
  natsUrl: string;
  stream: string;
  name: string;
  replicas?: number;
  auth?: NatsAuth;
  ensure?: boolean;
}): Promise<Ledger> {
  const nc = await connectNats({
    servers: opts.natsUrl,
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    auth: opts.auth,
  });
  const jsm = await jetstreamManager(nc);
  try {
    if (opts.ensure === false) await jsm.streams.info(opts.stream);
    else await ensureStream(jsm, opts.stream, opts.replicas);
  } catch (err) {
    await nc.close().catch(() => undefined);
    throw err;
  }
  return { nc, js: jetstream(nc), jsm, stream: opts.stream };
}

/**
 * Makes sure the ledger stream exists and is append-only: created if missing; a stream made
 * without `deny_delete` / `deny_purge` (by hand, or by an older version) gets them set, so
 * nothing can take an event out of the history afterwards.
 */
export async function ensureStream(jsm: JetStreamManager, name: string, replicas?: number): Promise<void> {
  const config = ledgerStreamConfig({ name, replicas }) as unknown as StreamConfig;
  let existing: StreamConfig | undefined;
  try {
    existing = (await jsm.streams.info(name)).config;
  } catch {
    existing = undefined;
  }
  if (existing !== undefined) {
    if (!existing.deny_delete || !existing.deny_purge) {
      await jsm.streams.update(name, { ...existing, deny_delete: true, deny_purge: true });
    }
  } else {
    try {
      await jsm.streams.add(config);
    } catch (err) {
      // Another service created it at the same moment.
      await jsm.streams.info(name).catch(() => {
        throw err;
      });
    }
  }
}

/** A KV bucket of one value a key: created when missing; an existing one is only looked up (what every role may do). */
function openBucket(ledger: Ledger, name: string, replicas: number): Promise<KV> {
  return new Kvm(ledger.nc).create(name, { history: 1, replicas });
}

/** The KV bucket of agent presence (key: encoded agent id); `replicas` only counts when it is created. */
export function openAgentsBucket(ledger: Ledger, replicas = 1): Promise<KV> {
  return openBucket(ledger, AGENTS_BUCKET, replicas);
}

/** The KV bucket of each id's last handled job publication (key: encoded agent id). */
export function openProgressBucket(ledger: Ledger, replicas = 1): Promise<KV> {
  return openBucket(ledger, PROGRESS_BUCKET, replicas);
}
