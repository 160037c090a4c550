// `jobledger replay` and `jobledger audit verify` through the CLI against a ledger started with
// `up --detach`: a replay into a named schema equals the live tables, a second one into the same
// schema is refused, `audit verify` is OK on a clean ledger and names the rows changed behind the
// projector's back (exit 1), and `replay --swap` replaces the live tables while the projector
// keeps projecting. Anything that stops them is one line on stderr with exit 2 (never 1, which
// is `audit verify`'s "differences found"): a checkpoint beyond the stream JOBLEDGER_STREAM
// names, a database that is gone; a failed replay drops its default schema.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import pg from 'pg';
import { CliHome } from './support/cli.js';
import { freshDatabase } from './support/servers.js';

const AGENT = 'replay-a1';
const home = new CliHome('jobledger-replay-');

async function ping(): Promise<string> {
  const r = await home.run(['run', '-v', AGENT, 'cmd.run', 'echo hi']);
  expect(r.code).toBe(0);
  const jid = /jid (\d{20})/.exec(r.stdout)?.[1];
  expect(jid).toBeDefined();
  return jid!;
}

/** Every compared table of a schema, rows ordered by their whole content. */
async function dump(schema: string): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const t of ['jids', 'salt_returns', 'salt_events', 'jobs', 'procs', 'agents', 'dead_letters']) {
    out[t] = await home.query(`SELECT * FROM "${schema}"."${t}" t ORDER BY to_jsonb(t)::text`);
  }
  return out;
}

const jids: string[] = [];

beforeAll(async () => {
  await home.up([AGENT]);
  for (let i = 0; i < 3; i++) jids.push(await ping());
  expect((await home.run(['runner', 'jobs.list_jobs'])).code).toBe(0);
  // the agent's proc.ended comes after the return: let it land, then wait for the projector
  await new Promise((r) => setTimeout(r, 500));
  expect((await home.run(['db', 'wait'])).code).toBe(0);
}, 240_000);

afterAll(() => home.downAndRemove(), 120_000);

describe('jobledger replay', () => {
  it('--into rebuilds every read model, equal to the live ones; the same schema again is refused', async () => {
    const r = await home.run(['replay', '--into', 'rebuilt']);
    expect(r.stderr).toBe(''); // not a terminal: no progress
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^replayed \d+ events \(sequences 1-\d+, 0 dead letters, 0 retention removals\) into schema rebuilt in [\d.]+ s \(\d[\d,]* events\/s\)\n$/,
    );
    const live = await dump('public');
    expect(live.salt_returns!.length).toBeGreaterThanOrEqual(4);
    const rebuilt = await dump('rebuilt');
    // the live tables may have moved on (the agent's late events): compare what the rebuild holds
    expect(rebuilt.jids).toEqual(live.jids);
    expect(rebuilt.salt_returns).toEqual(live.salt_returns);
    expect(rebuilt.jobs).toEqual(live.jobs);

    const again = await home.run(['replay', '--into', 'rebuilt']);
    expect(again).toEqual({
      code: 2,
      stdout: '',
      stderr: expect.stringMatching(
        /^jobledger replay: schema rebuilt already holds \d+ tables, indexes or sequences: choose another name or drop it first\n$/,
      ),
    });
  });

  it('audit verify: OK on a clean ledger; reports a changed, a deleted and an added row with exit 1', async () => {
    const ok = await home.run(['audit', 'verify']);
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(
      /^audit verify: OK: \d+ events up to seq \d+ \(every signature valid\), \d[\d,]* rows and \d+ chain values match \([\d.]+ s\)\n$/,
    );
    expect(ok.code).toBe(0);

    await home.query(`UPDATE salt_returns SET "return" = 'false' WHERE jid = $1 AND id = $2`, [jids[0], AGENT]);
    await home.query('DELETE FROM jids WHERE jid = $1', [jids[1]]);
    await home.query(`INSERT INTO salt_events (id, tag, data, alter_time, master_id) VALUES (999999, $1, '{}', now(), 'x')`, [
      `salt/job/${jids[2]}/ret/${AGENT}`,
    ]);
    const bad = await home.run(['audit', 'verify']);
    expect(bad.code).toBe(1);
    const lines = bad.stdout.trimEnd().split('\n');
    expect(lines.slice(0, -1)).toEqual([
      `jids: jid ${jids[1]}: missing`,
      `salt_returns: jid ${jids[0]} id ${AGENT}: row differs (return)`,
      `salt_events: jid ${jids[2]} event 999999: extra`,
    ]);
    expect(lines.at(-1)).toMatch(/^audit verify: FAILED: 3 row differences, 0 chain values differ, 0 events badly signed \(/);

    await home.query(`UPDATE salt_returns SET "return" = full_ret->'return' WHERE jid = $1 AND id = $2`, [jids[0], AGENT]);
    await home.query('INSERT INTO jids SELECT * FROM rebuilt.jids WHERE jid = $1', [jids[1]]);
    await home.query('DELETE FROM salt_events WHERE id = 999999');
    expect((await home.run(['audit', 'verify'])).code).toBe(0);
  });

  it('--swap replaces the live tables, keeps the old ones, and the projector goes on', async () => {
    const r = await home.run(['replay', '--swap']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const retired = /previous tables are in schema (public_before_\d{20})/.exec(r.stdout)?.[1];
    expect(retired, r.stdout).toBeDefined();
    expect((await home.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${retired}".jobs`))[0]!.n).toBeGreaterThanOrEqual(4);

    const jid = await ping();
    expect((await home.run(['db', 'wait'])).code).toBe(0);
    expect(await home.query('SELECT jid, returned FROM public.jobs WHERE jid = $1', [jid])).toEqual([{ jid, returned: 1 }]);
    await new Promise((r) => setTimeout(r, 500));
    const v = await home.run(['audit', 'verify']);
    expect(v.stdout).toMatch(/^audit verify: OK/);
    expect(v.code).toBe(0);
  });
});

describe('a ledger upgraded from a version before the chain', () => {
  it('audit verify and replay say once that rows retention removed before the upgrade cannot be checked', async () => {
    await home.query('UPDATE projector_checkpoint SET backfilled_seq = 5 WHERE name = $1', ['projector']);
    try {
      const hint =
        'this ledger was upgraded at seq 5: rows retention removed before then cannot be checked (they show as missing); ' +
        'run `jobledger replay --swap` once to start from a rebuilt history\n';
      const v = await home.run(['audit', 'verify']);
      expect(v.stdout).toMatch(/^audit verify: OK/);
      expect(v.stderr).toBe(`audit verify: ${hint}`);
      expect(v.code).toBe(0);
      const r = await home.run(['replay', '--into', 'after_upgrade']);
      expect(r.stderr).toBe(`replay: ${hint}`);
      expect(r.code).toBe(0);
    } finally {
      await home.query('UPDATE projector_checkpoint SET backfilled_seq = NULL');
    }
  });
});

describe('errors end replay and audit verify with one line and exit 2', () => {
  it('a live checkpoint beyond the stream JOBLEDGER_STREAM names: said at once, nothing swapped, no schema left', async () => {
    const nc = await connect(home.natsOptions());
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'OTHER', subjects: ['other.>'] });
    } finally {
      await nc.close();
    }
    const [{ seq }] = (await home.query<{ seq: string }>('SELECT last_seq::text AS seq FROM projector_checkpoint WHERE name = $1', [
      'projector',
    ])) as [{ seq: string }];
    const beyond = `the live checkpoint ${seq} is beyond the last sequence 0 of stream OTHER: is JOBLEDGER_STREAM right?`;
    const env = { JOBLEDGER_STREAM: 'OTHER' };

    const swap = await home.run(['replay', '--swap'], { env, timeoutMs: 60_000 });
    expect(swap.stdout).toBe('');
    expect(swap.stderr).toMatch(
      new RegExp(
        `^jobledger replay: ${escape(beyond)} \\(nothing was swapped; the partial rebuild in schema replay_\\d{20} was dropped\\)\n$`,
      ),
    );
    expect(swap.code).toBe(2);
    expect(await home.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'replay\\_%'")).toEqual([]);

    const verify = await home.run(['audit', 'verify'], { env, timeoutMs: 60_000 });
    expect(verify).toEqual({ code: 2, stdout: '', stderr: `jobledger audit verify: ${beyond}\n` });
  });

  it('a database error on the way is named by the runtime (a table dropped behind its back), exit 2', async () => {
    const other = await freshDatabase('replay_broken');
    expect((await home.run(['db', 'migrate'], { env: { DATABASE_URL: other } })).code).toBe(0);
    const pool = new pg.Pool({ connectionString: other, max: 1 });
    try {
      await pool.query('DROP TABLE projector_checkpoint');
    } finally {
      await pool.end();
    }
    const where = `database "${new URL(other).pathname.slice(1)}" at 127.0.0.1:${new URL(other).port}`;
    const missing = `the jobledger tables are missing in ${where}: run \`npx jobledger db migrate\` (or \`npx jobledger up\`)`;
    const verify = await home.run(['audit', 'verify'], { env: { DATABASE_URL: other } });
    expect(verify).toEqual({ code: 2, stdout: '', stderr: `jobledger audit verify: ${missing}\n` });
    const replay = await home.run(['replay', '--into', 'broken'], { env: { DATABASE_URL: other } });
    expect(replay).toEqual({ code: 2, stdout: '', stderr: `jobledger replay: ${missing}\n` });
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
