import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import pg from 'pg';
import { PROJECTOR_CONSUMER } from '@jobledger/core';
import { resolveEndpoints } from '../home.js';

/** `jobledger db url`: the PostgreSQL URL, for `psql "$(npx jobledger db url)"`. */
export function dbUrlCommand(io: { stdout: (t: string) => void }): number {
  io.stdout(resolveEndpoints().databaseUrl + '\n');
  return 0;
}

/**
 * `jobledger db wait`: returns once the projector has applied every event appended so far,
 * so a query right after a job sees all of its rows.
 */
export async function dbWaitCommand(timeoutSec: number, io: { stderr: (t: string) => void }): Promise<number> {
  const { natsUrl, databaseUrl, stream } = resolveEndpoints();
  const nc = await connect({ servers: natsUrl, name: 'jobledger-cli', timeout: 3000 });
  const client = new pg.Client({ connectionString: databaseUrl });
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
  } finally {
    await client.end().catch(() => undefined);
    await nc.close();
  }
}
