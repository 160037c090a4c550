// The embedded servers: the run's shared ones (test/global-setup.ts) and startNatsServer itself.

import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer } from '../../packages/cli/src/embedded/nats-server.js';
import { freshDatabase, natsUrl, uniqueName } from './servers.js';

describe('shared nats-server', () => {
  it('does publish/subscribe and request/reply', async () => {
    const nc = await connect({ servers: natsUrl() });
    try {
      const subject = uniqueName('echo');
      const sub = nc.subscribe(subject, {
        callback: (err, msg) => {
          if (!err && msg.reply) msg.respond(`pong:${msg.string()}`);
        },
      });
      const events = uniqueName('events');
      const received = new Promise<string>((resolve) => {
        nc.subscribe(events, { max: 1, callback: (_err, msg) => resolve(msg.string()) });
      });
      await nc.flush();

      nc.publish(events, 'hello');
      expect(await received).toBe('hello');

      const reply = await nc.request(subject, 'ping', { timeout: 5_000 });
      expect(reply.string()).toBe('pong:ping');
      sub.unsubscribe();
    } finally {
      await nc.close();
    }
  });

  it('has JetStream enabled', async () => {
    const nc = await connect({ servers: natsUrl() });
    try {
      const info = (await nc.request('$JS.API.INFO', '', { timeout: 5_000 })).json<{
        type?: string;
        error?: unknown;
      }>();
      expect(info.error).toBeUndefined();
      expect(info.type).toBe('io.nats.jetstream.api.v1.account_info_response');
    } finally {
      await nc.close();
    }
  });
});

describe('shared PostgreSQL', () => {
  it('gives each caller a fresh database', async () => {
    const url = await freshDatabase('embedded');
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ one: number; db: string }>('select 1 as one, current_database() as db');
      expect(rows).toEqual([{ one: 1, db: new URL(url).pathname.slice(1) }]);
      const { rows: tables } = await client.query("select 1 from information_schema.tables where table_schema = 'public'");
      expect(tables).toHaveLength(0);
    } finally {
      await client.end();
    }
  });
});

describe('startNatsServer', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'jobledger-nats-'));
    await chmod(dir, 0o755);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('starts independent servers on random ports and stop() leaves no process', async () => {
    const a = await startNatsServer({ storeDir: path.join(dir, 'a') });
    const b = await startNatsServer({ storeDir: path.join(dir, 'b') });
    try {
      expect(a.port).not.toBe(b.port);
      expect(a.pid).not.toBe(b.pid);
      expect(a.url).toBe(`nats://127.0.0.1:${a.port}`);
      for (const server of [a, b]) {
        const nc = await connect({ servers: server.url });
        await nc.flush();
        await nc.close();
      }
      expect(existsSync(`/proc/${a.pid}`)).toBe(true);
    } finally {
      await a.stop();
      await b.stop();
    }
    expect(existsSync(`/proc/${a.pid}`)).toBe(false);
    expect(existsSync(`/proc/${b.pid}`)).toBe(false);
    await a.stop(); // idempotent
  });

  it('rejects with the server log when the server exits during startup', async () => {
    const a = await startNatsServer({ storeDir: path.join(dir, 'c') });
    try {
      await expect(startNatsServer({ storeDir: path.join(dir, 'd'), port: a.port })).rejects.toThrow(
        /exited during startup[\s\S]*address already in use/,
      );
    } finally {
      await a.stop();
    }
  });
});
