// Vitest global setup for the "integration" project: ONE nats-server and ONE PostgreSQL for the
// whole run (this runs once, in the main vitest process), handed to test files through
// `inject('natsUrl')` / `inject('databaseUrl')` — see test/support/servers.ts. Test files isolate
// themselves with unique stream names and fresh databases instead of servers of their own.

import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startNatsServer, type NatsServerHandle } from '../packages/cli/src/embedded/nats-server.js';
import { startPostgres, type PostgresHandle } from '../packages/cli/src/embedded/postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    natsUrl: string;
    databaseUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'jobledger-test-'));
  // mkdtemp makes it 0700; PostgreSQL runs as the `postgres` user when we are root.
  await chmod(root, 0o755);

  const [nats, postgres] = await Promise.allSettled([
    startNatsServer({ storeDir: path.join(root, 'nats') }),
    startPostgres({ dataDir: path.join(root, 'pg', 'data') }),
  ]);

  const stopAll = async (): Promise<void> => {
    const handles: Array<NatsServerHandle | PostgresHandle> = [];
    if (nats.status === 'fulfilled') handles.push(nats.value);
    if (postgres.status === 'fulfilled') handles.push(postgres.value);
    await Promise.allSettled(handles.map((h) => h.stop()));
    await rm(root, { recursive: true, force: true });
  };

  if (nats.status === 'rejected' || postgres.status === 'rejected') {
    const reasons = [nats, postgres].flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    await stopAll();
    throw reasons.length === 1 ? reasons[0] : new AggregateError(reasons, 'test servers failed to start');
  }

  project.provide('natsUrl', nats.value.url);
  project.provide('databaseUrl', postgres.value.url);

  return stopAll;
}
