// Golden histories (test/fixtures/golden/<name>/): recorded stream messages, applied through
// the projector's own applyBatch into a fresh, migrated database, must give exactly the stored
// rows of jids, salt_returns, salt_events and dead_letters. A change to the projections or the
// event schemas that changes what a recorded history projects to fails here; when the change
// is meant, re-record the snapshots deliberately with `node test/fixtures/golden/update.js`.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import prettier from 'prettier';
import { afterAll, describe, expect, it } from 'vitest';
import { migrateDatabase } from '@jobledger/runtime';
import { freshDatabase } from '../../../test/support/servers.js';
import { applyBatch, type ApplyOptions } from './apply.js';
import type { RawMessage } from './projections.js';

const GOLDEN = fileURLToPath(new URL('../../../test/fixtures/golden/', import.meta.url));
const MASTER_ID = 'golden_master';
const UPDATE = process.env.JOBLEDGER_GOLDEN_UPDATE === '1';

/** The tables compared, with the stable order of their rows. */
const TABLES = {
  jids: 'jid',
  salt_returns: 'jid, id, alter_time, full_ret::text',
  salt_events: 'id',
  dead_letters: 'seq',
} as const;
type Table = keyof typeof TABLES;

interface RecordedMessage {
  seq: number;
  subject: string;
  /** When the stream stored it (RFC 3339, as the server gave it). */
  time: string;
  /** The message body, exactly. */
  data: string;
}

function readHistory(name: string): RawMessage[] {
  const text = fs.readFileSync(path.join(GOLDEN, name, 'events.jsonl'), 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const m = JSON.parse(l) as RecordedMessage;
      return { seq: m.seq, subject: m.subject, data: new TextEncoder().encode(m.data), time: new Date(m.time) };
    });
}

const histories = fs
  .readdirSync(GOLDEN, { withFileTypes: true })
  .filter((d) => d.isDirectory() && fs.existsSync(path.join(GOLDEN, d.name, 'events.jsonl')))
  .map((d) => d.name)
  .sort();

const pools: pg.Pool[] = [];
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
});

/** Applies the messages in batches of `batch` to a fresh database; returns every table's rows. */
async function project(messages: RawMessage[], batch: number): Promise<Record<Table, unknown[]>> {
  const url = await freshDatabase('golden');
  await migrateDatabase(url);
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pools.push(pool);
  const bySeq = new Map(messages.map((m) => [m.seq, m]));
  const opts: ApplyOptions = {
    name: 'projector',
    masterId: MASTER_ID,
    maxFill: 1000,
    fetchMissing: async (seqs) => seqs.map((s) => bySeq.get(s) ?? null),
    streamFirstSeq: async () => 1,
  };
  for (let i = 0; i < messages.length; i += batch) {
    const r = await applyBatch(pool, messages.slice(i, i + batch), opts);
    expect(r.complete).toBe(true);
  }
  const client = await pool.connect();
  try {
    await client.query("SET TimeZone = 'UTC'");
    const out = {} as Record<Table, unknown[]>;
    for (const [table, order] of Object.entries(TABLES) as [Table, string][]) {
      out[table] = (await client.query<{ row: unknown }>(`SELECT to_jsonb(t) AS row FROM ${table} t ORDER BY ${order}`)).rows.map(
        (r) => r.row,
      );
    }
    return out;
  } finally {
    client.release();
  }
}

const snapshotFile = (name: string, table: Table) => path.join(GOLDEN, name, `${table}.json`);
const readSnapshot = (name: string, table: Table): unknown => JSON.parse(fs.readFileSync(snapshotFile(name, table), 'utf8'));

describe('golden histories', () => {
  it('are all there', () => {
    expect(histories).toEqual(['agent-start', 'dead-letter', 'job-two-returns', 'old-shape-returns', 'runner-job', 'signalled-job']);
  });

  for (const name of histories) {
    it(`${name} projects to its stored rows, in one batch and one message at a time`, async () => {
      const messages = readHistory(name);
      expect(messages.map((m) => m.seq)).toEqual(messages.map((_, i) => i + 1));
      const rows = await project(messages, messages.length);
      if (UPDATE) {
        for (const table of Object.keys(TABLES) as Table[]) {
          const file = snapshotFile(name, table);
          const options = { ...(await prettier.resolveConfig(file)), filepath: file };
          fs.writeFileSync(file, await prettier.format(JSON.stringify(rows[table]), options));
        }
      }
      for (const table of Object.keys(TABLES) as Table[]) expect(rows[table], `${name}/${table}.json`).toEqual(readSnapshot(name, table));
      expect(await project(messages, 1)).toEqual(rows);
    });
  }

  it('the returns recorded in version 0 of job.returned give the rows of the current version', () => {
    const oldBodies = readHistory('old-shape-returns').map(
      (m) => JSON.parse(new TextDecoder().decode(m.data)) as { v?: number; type: string },
    );
    expect(oldBodies.filter((b) => b.type === 'job.returned').map((b) => b.v)).toEqual([0, 0]);
    for (const table of Object.keys(TABLES) as Table[]) {
      expect(readSnapshot('old-shape-returns', table), table).toEqual(readSnapshot('job-two-returns', table));
    }
  });

  it('the recorded histories cover what they are named after', () => {
    const types = (name: string) =>
      readHistory(name).map((m) => {
        try {
          return (JSON.parse(new TextDecoder().decode(m.data)) as { type: string }).type;
        } catch {
          return 'not JSON';
        }
      });
    expect(types('job-two-returns').filter((t) => t === 'job.returned')).toHaveLength(2);
    expect((readSnapshot('job-two-returns', 'salt_returns') as { success: string }[]).map((r) => r.success).sort()).toEqual([
      'false',
      'true',
    ]);
    expect(types('runner-job')).toEqual(['runner.published', 'runner.returned']);
    expect(types('signalled-job')).toContain('proc.signalled');
    expect(
      (readSnapshot('signalled-job', 'salt_events') as { data: { outcome?: string } }[]).some((e) => e.data.outcome === 'signalled'),
    ).toBe(true);
    expect(types('agent-start').every((t) => t === 'agent.started')).toBe(true);
    expect(readSnapshot('dead-letter', 'dead_letters')).toHaveLength(readHistory('dead-letter').length);
  });
});
