import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '@jobledger/runtime/nats-connect';
import { jetstreamManager } from '@nats-io/jetstream';
import pg from 'pg';
import { PROJECTOR_CONSUMER } from '@jobledger/core';
import { databaseAddress, databaseError, migrateDatabase, verifyDatabase } from '@jobledger/runtime';
import { homeLayout, NotRunningError, readState, resolveEndpoints } from '../home.js';
import { MASTER_UNREACHABLE, MasterUnreachableError } from '@jobledger/runtime/ledger-client';

// A missing, unreachable or unmigrated database throws the runtime's DatabaseNotReadyError
// subclasses, whose message is the one line main.ts prints (exit 2).

/**
 * `jobledger db url`: the PostgreSQL URL, for `psql "$(npx jobledger db url)"`, once the tables
 * are there: the read models' owner (not a superuser). `--read-only`: a role that may only SELECT.
 */
export async function dbUrlCommand(io: { stdout: (t: string) => void }, opts: { readOnly?: boolean } = {}): Promise<number> {
  let { databaseUrl } = resolveEndpoints();
  if (opts.readOnly) {
    const readOnly = process.env.DATABASE_URL ? undefined : readState(homeLayout())?.readOnlyDatabaseUrl;
    if (!readOnly) {
      throw new NotRunningError(
        process.env.DATABASE_URL
          ? 'no read-only role for a DATABASE_URL of your own: create one that may only SELECT (docs/security.md shows how)'
          : `no read-only role recorded under ${homeLayout().root}: start the master with \`npx jobledger up --detach\` (or \`master\`)`,
      );
    }
    databaseUrl = readOnly;
  }
  await verifyDatabase(databaseUrl);
  io.stdout(databaseUrl + '\n');
  return 0;
}

/**
 * `jobledger db wait`: returns once the projector has applied every event appended so far,
 * so a query right after a job sees all of its rows.
 */
export async function dbWaitCommand(timeoutSec: number, io: { stderr: (t: string) => void }): Promise<number> {
  const { natsUrl, databaseUrl, stream, auth } = resolveEndpoints();
  await verifyDatabase(databaseUrl);
  let nc: NatsConnection;
  try {
    nc = await connectNats({ servers: natsUrl, name: 'jobledger-cli', timeout: 3000, auth });
  } catch (cause) {
    throw new MasterUnreachableError(MASTER_UNREACHABLE, { cause });
  }
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('error', () => {
    /* reported by the query that fails */
  });
  try {
    const jsm = await jetstreamManager(nc);
    const target = (await jsm.streams.info(stream)).state.last_seq;
    await client.connect();
    const until = Date.now() + timeoutSec * 1000;
    for (;;) {
      const { rows } = await client.query<{ last_seq: string }>('SELECT last_seq FROM projector_checkpoint WHERE name = $1', [
        PROJECTOR_CONSUMER,
      ]);
      const applied = Number(rows[0]?.last_seq ?? 0);
      if (applied >= target) return 0;
      if (Date.now() > until) {
        io.stderr(`the projector has applied events up to ${applied} of ${target} after ${timeoutSec} s\n`);
        return 1;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    throw databaseError(err, databaseUrl);
  } finally {
    await client.end().catch(() => undefined);
    await nc.close();
  }
}

/** The database of the ledger: `DATABASE_URL`, else the one `up` recorded. */
function resolveDatabaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  const url = env.DATABASE_URL || readState(homeLayout(env))?.databaseUrl;
  if (!url) {
    throw new NotRunningError(
      `no database to migrate: set DATABASE_URL, or start jobledger under ${homeLayout(env).root} with \`npx jobledger up --detach\``,
    );
  }
  return url;
}

/** `jobledger db migrate`: applies the pending migrations to the ledger's database. */
export async function dbMigrateCommand(io: { stdout: (t: string) => void }): Promise<number> {
  const url = resolveDatabaseUrl();
  const applied = await migrateDatabase(url);
  const where = databaseAddress(url).display;
  io.stdout(applied === 0 ? `the ${where} is up to date\n` : `applied ${applied} migration${applied === 1 ? '' : 's'} to the ${where}\n`);
  return 0;
}
