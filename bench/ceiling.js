// The machine's ceiling for the ledger's throughput figures, measured on the same stream and the
// same database right before the figures it is compared with (bench/replay.js):
//
// - read: an ordered consumer reading the whole stream (messages/s), nothing else done with them;
// - copy: the rows the read models get from that stream (a salt_events row for every event, a
//   jids row for every publication, a salt_returns row for every return), already in memory,
//   written with PostgreSQL's COPY into scratch tables of the read models' columns (rows/s),
//   once without indexes and once with the read models' own indexes (their GIN indexes on the
//   JSON columns are most of the cost);
// - pipeline: stream → JSON parse → COPY (without indexes), events/s: what a projector with no
//   checks, no hash chain and no upserts could do at best. Ratios are of this figure.
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { DeliverPolicy } from '@nats-io/jetstream';

const SCHEMA = 'bench_ceiling';
const TABLES = ['salt_events', 'jids', 'salt_returns'];
const COLUMNS = {
  salt_events: '(id, tag, data, alter_time, master_id)',
  jids: '(jid, load)',
  salt_returns: '(fun, jid, "return", id, success, full_ret, alter_time)',
};

export const ratio = (value, ceiling) => +(value / ceiling).toFixed(3);

/** A CSV field: quoted, with its quotes doubled (COPY's CSV format). */
const csv = (v) => (v === null || v === undefined ? '' : `"${String(v).replaceAll('"', '""')}"`);

/** The rows one stream message gives the three tables, as CSV lines. */
function rowsOf(seq, time, data, out) {
  const ev = JSON.parse(Buffer.from(data).toString('utf8'));
  const t = time.toISOString();
  const d = JSON.stringify(ev.data ?? null);
  out.salt_events.push(`${seq},${csv(ev.tag)},${csv(d)},${t},master\n`);
  if (ev.type === 'job.published') out.jids.push(`${csv(ev.data.jid)},${csv(d)}\n`);
  if (ev.type === 'job.returned') {
    const r = ev.data;
    out.salt_returns.push(
      `${csv(r.fun)},${csv(r.jid)},${csv(JSON.stringify(r.return ?? null))},${csv(r.id)},${r.success ? 'true' : 'false'},${csv(d)},${t}\n`,
    );
  }
}

const emptyRows = () => ({ salt_events: [], jids: [], salt_returns: [] });
const rowCount = (rows) => TABLES.reduce((n, t) => n + rows[t].length, 0);

async function scratchTables(client, withIndexes) {
  await client.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await client.query(`CREATE SCHEMA ${SCHEMA}`);
  for (const t of TABLES) {
    await client.query(`CREATE TABLE ${SCHEMA}.${t} (LIKE public.${t} INCLUDING DEFAULTS ${withIndexes ? 'INCLUDING INDEXES' : ''})`);
  }
}

async function copyInto(client, table, lines) {
  if (lines.length === 0) return;
  await pipeline(
    Readable.from(lines),
    client.query(copyStreams.from(`COPY ${SCHEMA}.${table} ${COLUMNS[table]} FROM STDIN WITH (FORMAT csv)`)),
  );
}

/**
 * Reads the whole stream with an ordered consumer, calling `each` for every message; resolves
 * with the count and the ms it took (the consumer is closed after the clock stops: its close
 * settles only once what it buffered is read, so it is not waited for long).
 */
async function readAll(ledger, last, each) {
  const t0 = performance.now();
  const consumer = await ledger.js.consumers.get(ledger.stream, { deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume({ max_messages: 10_000 });
  let n = 0;
  for await (const m of messages) {
    const r = each(m);
    if (r) await r;
    n++;
    if (m.seq >= last) break;
  }
  const ms = performance.now() - t0;
  await Promise.race([messages.close().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000).unref())]);
  return { n, ms };
}

export async function measureCeiling({ ledger, databaseUrl }) {
  const last = (await ledger.jsm.streams.info(ledger.stream)).state.last_seq;
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    // 1. Read only.
    const { n: messages, ms: readMs } = await readAll(ledger, last, () => undefined);

    // 2. COPY only, from rows made beforehand: without, then with the read models' indexes.
    const rows = emptyRows();
    await readAll(ledger, last, (m) => rowsOf(m.seq, m.time, m.data, rows));
    const copy = {};
    for (const withIndexes of [false, true]) {
      await scratchTables(client, withIndexes);
      const t0 = performance.now();
      await client.query('BEGIN');
      for (const t of TABLES) await copyInto(client, t, rows[t]);
      await client.query('COMMIT');
      const ms = performance.now() - t0;
      copy[withIndexes ? 'indexed' : 'bare'] = {
        rows: rowCount(rows),
        ms: Math.round(ms),
        rows_per_s: Math.round(rowCount(rows) / (ms / 1000)),
      };
    }

    // 3. The pipeline: read, parse, COPY in batches of 5,000 events (one transaction each), no indexes.
    await scratchTables(client, false);
    let batch = emptyRows();
    let inBatch = 0;
    const flush = async (rows) => {
      await client.query('BEGIN');
      for (const t of TABLES) await copyInto(client, t, rows[t]);
      await client.query('COMMIT');
    };
    // One batch is written while the next is read and parsed.
    let writing = Promise.resolve();
    const read = await readAll(ledger, last, (m) => {
      rowsOf(m.seq, m.time, m.data, batch);
      if (++inBatch < 5_000) return undefined;
      const full = batch;
      batch = emptyRows();
      inBatch = 0;
      const before = writing;
      writing = before.then(() => flush(full));
      return before;
    });
    const t1 = performance.now();
    await writing;
    await flush(batch);
    const pipelineMs = read.ms + (performance.now() - t1);
    await client.query(`DROP SCHEMA ${SCHEMA} CASCADE`);
    return {
      read: { messages, ms: Math.round(readMs), msgs_per_s: Math.round(messages / (readMs / 1000)) },
      copy,
      pipeline: { events: messages, ms: Math.round(pipelineMs), events_per_s: Math.round(messages / (pipelineMs / 1000)) },
    };
  } finally {
    await client.end();
  }
}
