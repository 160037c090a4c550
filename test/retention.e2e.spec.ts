// Retention through the CLI: `up --detach` with Salt's keep_jobs_seconds / archive_jobs /
// loop_interval in the environment (the supervisor hands it to the projector), then a job's
// rows move to the archive tables while the stream keeps its events. And the one-line errors
// of `db wait` / `db url` against a database that is unmigrated or unreachable.

import fs from 'node:fs';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEvent } from '@jobledger/core';
import { CliHome } from './support/cli.js';
import { freshDatabase } from './support/servers.js';

const AGENT = 'retention-a1';
const RETENTION_ENV = { JOBLEDGER_KEEP_JOBS_SECONDS: '2', JOBLEDGER_LOOP_INTERVAL: '1', JOBLEDGER_ARCHIVE_JOBS: 'true' };
const home = new CliHome('jobledger-retention-');

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  await home.up([AGENT], { env: RETENTION_ENV });
}, 200_000);

afterAll(() => home.downAndRemove(), 120_000);

describe('retention (keep_jobs_seconds, archive_jobs, loop_interval)', () => {
  it('moves a job older than JOBLEDGER_KEEP_JOBS_SECONDS to the archive tables; the stream keeps its events', async () => {
    const r = await home.run(['run', '-v', AGENT, 'test.ping']);
    expect(r.code).toBe(0);
    const jid = /jid (\d{20})/.exec(r.stdout)?.[1];
    expect(jid).toBeDefined();

    await waitFor(
      'the job in jobs_archive',
      async () => (await home.query('SELECT 1 FROM jobs_archive WHERE jid = $1', [jid])).length === 1,
    );
    // the proc.ended event may come after the return: wait for the job to be gone everywhere
    await waitFor(
      'no row of the job left',
      async () =>
        (
          await home.query<{ n: number }>(
            `SELECT ((SELECT count(*) FROM jobs WHERE jid = $1) + (SELECT count(*) FROM jids WHERE jid = $1)
                  + (SELECT count(*) FROM salt_returns WHERE jid = $1) + (SELECT count(*) FROM procs WHERE jid = $1)
                  + (SELECT count(*) FROM salt_events WHERE tag LIKE 'salt/job/' || $1 || '/%'))::int AS n`,
            [jid],
          )
        )[0]!.n === 0,
    );

    expect(await home.query('SELECT jid, fun, expected, returned, failed FROM jobs_archive WHERE jid = $1', [jid])).toEqual([
      { jid, fun: 'test.ping', expected: 1, returned: 1, failed: 0 },
    ]);
    expect(await home.query("SELECT jid, load->>'fun' AS fun FROM jids_archive WHERE jid = $1", [jid])).toEqual([
      { jid, fun: 'test.ping' },
    ]);
    expect(await home.query('SELECT id, "return", success FROM salt_returns_archive WHERE jid = $1', [jid])).toEqual([
      { id: AGENT, return: true, success: 'true' },
    ]);
    const archived = await home.query<{ id: string; tag: string }>(
      "SELECT id::text AS id, tag FROM salt_events_archive WHERE tag LIKE 'salt/job/' || $1 || '/%' ORDER BY id::bigint",
      [jid],
    );
    expect(archived.map((e) => e.tag)).toEqual(
      expect.arrayContaining([`salt/job/${jid}/new`, `salt/job/${jid}/ret/${AGENT}`, `salt/job/${jid}/proc/${AGENT}/started`]),
    );

    // Replayable: every archived event is still in the stream, at its sequence, with its tag.
    const state = JSON.parse(fs.readFileSync(path.join(home.root, 'state.json'), 'utf8')) as { natsUrl: string; stream: string };
    const nc = await connect(home.natsOptions());
    try {
      const jsm = await jetstreamManager(nc);
      for (const e of archived) {
        const m = await jsm.streams.getMessage(state.stream, { seq: Number(e.id) });
        expect(m && decodeEvent(m.data).tag).toBe(e.tag);
      }
      const info = await jsm.streams.info(state.stream, { subjects_filter: `ledger.job.${jid}.>` });
      const stored = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
      expect(stored).toBe(archived.length);
    } finally {
      await nc.close();
    }
  });
});

describe('a database that is not ready gives one line and exit 2', () => {
  it('db wait / db url against an empty database name `db migrate`, which fixes it', async () => {
    const empty = await freshDatabase('unmigrated');
    const name = new URL(empty).pathname.slice(1);
    const where = `database "${name}" at 127.0.0.1:${new URL(empty).port}`;
    const missing = `the jobledger tables are missing in ${where}: run \`npx jobledger db migrate\` (or \`npx jobledger up\`)\n`;

    for (const cmd of [
      ['db', 'wait'],
      ['db', 'url'],
    ]) {
      const r = await home.run(cmd, { env: { DATABASE_URL: empty } });
      expect(r, cmd.join(' ')).toEqual({ code: 2, stdout: '', stderr: missing });
    }

    const m = await home.run(['db', 'migrate'], { env: { DATABASE_URL: empty } });
    expect(m.stderr).toBe('');
    expect(m.code).toBe(0);
    expect(m.stdout).toMatch(new RegExp(`^applied \\d+ migrations? to the ${where}\\n$`));
    expect(await home.run(['db', 'migrate'], { env: { DATABASE_URL: empty } })).toEqual({
      code: 0,
      stdout: `the ${where} is up to date\n`,
      stderr: '',
    });
    expect(await home.run(['db', 'url'], { env: { DATABASE_URL: empty } })).toEqual({ code: 0, stdout: `${empty}\n`, stderr: '' });
  });

  it('an unreachable PostgreSQL is named with its address', async () => {
    const r = await home.run(['db', 'wait'], { env: { DATABASE_URL: 'postgres://jobledger@127.0.0.1:1/jobledger' } });
    expect(r).toEqual({ code: 2, stdout: '', stderr: 'cannot reach PostgreSQL at 127.0.0.1:1: connection refused\n' });
  });
});
