// Salt's master_job_cache and event_return through the real stack: `up` with a master.yaml
// naming pgjsonb on a second PostgreSQL (started here) and rawfile_json for events. The second
// PostgreSQL is stopped while jobs run and started again: every return reaches it, once.

import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, startPostgres, type PostgresHandle } from '../packages/cli/src/embedded/postgres.js';
import { CliHome } from './support/cli.js';

const IDS = ['cache-a1', 'cache-a2'];
const home = new CliHome('jobledger-master-job-cache-');
const eventsFile = path.join(home.root, 'log', 'events.json');
let pgDir = '';
let second: PostgresHandle | undefined;
let saltUrl = '';

async function saltQuery<T extends pg.QueryResultRow>(sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: saltUrl });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function ping(): Promise<string> {
  const r = await home.run(['run', '-v', '*', 'test.ping']);
  expect(r.code).toBe(0);
  return /jid (\d{20})/.exec(r.stdout)![1]!;
}

beforeAll(async () => {
  pgDir = await mkdtemp(path.join(os.tmpdir(), 'jobledger-second-pg-'));
  await chmod(pgDir, 0o755);
  second = await startPostgres({ dataDir: path.join(pgDir, 'data') });
  saltUrl = await createDatabase(second.url, 'salt');
  const u = new URL(saltUrl);
  writeFileSync(
    path.join(home.root, 'master.yaml'),
    [
      'master_job_cache: pgjsonb',
      'event_return: rawfile_json',
      "event_return_whitelist: ['salt/job/*/new']",
      `returner.pgjsonb.host: ${u.hostname}`,
      `returner.pgjsonb.port: ${u.port}`,
      `returner.pgjsonb.user: ${decodeURIComponent(u.username)}`,
      `returner.pgjsonb.pass: '${decodeURIComponent(u.password)}'`,
      'returner.pgjsonb.db: salt',
      `rawfile_json.filename: ${eventsFile}`,
      '',
    ].join('\n'),
  );
  await home.up(IDS);
}, 240_000);

afterAll(async () => {
  await home.downAndRemove();
  await second?.stop();
  await rm(pgDir, { recursive: true, force: true });
}, 120_000);

describe('master_job_cache: pgjsonb and event_return: rawfile_json, fed from the ledger', () => {
  it('stores every load and return in the second database, also those made while it was down', async () => {
    const before = [await ping(), await ping()];
    await eventually('the first returns in the second database', async () => {
      const rows = await saltQuery<{ n: number }>(`SELECT count(*)::int AS n FROM salt_returns WHERE jid IN ('${before.join("','")}')`);
      return rows[0]!.n === 4 ? true : undefined;
    });

    const port = second!.port;
    await second!.stop();
    const during = [await ping(), await ping(), await ping()];
    second = await startPostgres({ dataDir: path.join(pgDir, 'data'), port });

    const all = [...before, ...during];
    const rows = await eventually('every return in the second database', async () => {
      const r = await saltQuery<{ jid: string; id: string; success: string }>(
        `SELECT jid, id, success FROM salt_returns WHERE fun = 'test.ping' ORDER BY jid, id`,
      );
      return r.length >= all.length * IDS.length ? r : undefined;
    });
    expect(rows).toEqual(all.sort().flatMap((jid) => IDS.map((id) => ({ jid, id, success: 'true' }))));
    const loads = await saltQuery<{ jid: string; fun: string; tgt: string }>(
      `SELECT jid, load->>'fun' AS fun, load->>'tgt' AS tgt FROM jids WHERE load->>'fun' = 'test.ping' ORDER BY jid`,
    );
    expect(loads).toEqual(all.map((jid) => ({ jid, fun: 'test.ping', tgt: '*' })));

    // event_return: only the whitelisted publications, one JSON document per line
    const lines = await eventually('the event lines', async () => {
      const l = (await readFile(eventsFile, 'utf8'))
        .trim()
        .split('\n')
        .map((x) => JSON.parse(x) as { tag: string });
      return l.filter((e) => e.tag.endsWith('/new')).length >= all.length ? l : undefined;
    });
    expect(lines.every((e) => /^salt\/job\/\d{20}\/new$/.test(e.tag))).toBe(true);
    for (const jid of all) expect(lines.map((e) => e.tag)).toContain(`salt/job/${jid}/new`);
  });

  it('hands the returner a return kept in the object store (over 1 MB) whole', async () => {
    const r = await home.run(['run', '-v', IDS[0]!, 'cmd.run', "head -c 1200000 /dev/zero | tr '\\0' y"]);
    expect(r.code).toBe(0);
    const jid = /jid (\d{20})/.exec(r.stdout)![1]!;
    const rows = await eventually('the large return in the second database', async () => {
      const x = await saltQuery<{ n: number }>(`SELECT length("return" #>> '{}')::int AS n FROM salt_returns WHERE jid = '${jid}'`);
      return x.length > 0 ? x : undefined;
    });
    expect(rows).toEqual([{ n: 1_200_000 }]);
  });
});
