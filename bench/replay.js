// Replay and audit benchmark (not part of the test suite):
//
//   node bench/replay.js [jobs=10000] [--keep]
//
// Starts a ledger with `up --detach` in a fresh JOBLEDGER_HOME, appends `jobs` jobs to its stream
// as the services would (job.published, then per expected agent proc.started, job.returned,
// proc.ended: 1-8 agents a job, list targets over a fleet of 8 ids that no running agent hosts,
// the function mix of bench/seed-jobs.js), waits until the projector has applied them, then
// times `npx jobledger replay --into rebuilt` and `npx jobledger audit verify`, and stops the
// ledger (with --keep: leaves it running and prints its JOBLEDGER_HOME, to try `audit verify` after
// editing a row by hand; `JOBLEDGER_HOME=<home> npx jobledger down` stops it). Prints one JSON line.
//
// As the services do, it connects with the home's admin credentials over TLS and signs every
// event: the fleet's 8 keys are accepted in the master's key store (and so in the ledger's key
// events) first, job publications are signed with the master's event key and agent events with
// their id's key, so the projector, the replay and the audit check every signature.
// Before the replay, bench/ceiling.js measures what this machine can do with the same stream:
// replay, verify and the projector's catch-up are printed with that ceiling and their ratio.
// After them, bench/explain.js runs one more replay with auto_explain, for PostgreSQL's share.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { measureCeiling, ratio } from './ceiling.js';
import { explainReplay } from './explain.js';
import { events, signedFleet } from './ledger-events.js';
import { encodeEvent } from '@jobledger/core';
import { openLedger } from '../packages/runtime/dist/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'packages/cli/bin/jobledger.js');
const PUBLISHERS = 4;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The projector under a live burst: the events (encoded and signed beforehand, so that the burst
 * measures the ledger and not the bench) are published by PUBLISHERS connections at once, each
 * job's events in order on one of them, while the projector's checkpoint is polled every 5 ms.
 * Throughput: events from the first publish to the checkpoint reaching the last one; latency
 * of each event: from its publish to the first poll that saw the checkpoint at or past it.
 */
async function projectorLive({ state, auth, databaseUrl, signers, master }) {
  const lanes = Array.from({ length: PUBLISHERS }, () => []);
  const lane = new Map();
  for (const [subject, msgID, ev] of events(count)) {
    const body = encodeEvent(ev);
    const signer = ev.type === 'job.published' ? master : signers.get(ev.data.id);
    if (!lane.has(ev.data.jid)) lane.set(ev.data.jid, lane.size % PUBLISHERS);
    lanes[lane.get(ev.data.jid)].push({ subject, body, msgID, headers: signer.headers(subject, body) });
  }
  const pubs = await Promise.all(
    lanes.map((_, i) => openLedger({ natsUrl: state.natsUrl, stream: state.stream, name: `bench-publisher-${i}`, auth, ensure: false })),
  );
  const pgc = new pg.Client({ connectionString: databaseUrl });
  await pgc.connect();
  const seen = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const { rows } = await pgc.query('SELECT coalesce(max(last_seq), 0)::bigint AS s FROM projector_checkpoint');
      seen.push([performance.now(), Number(rows[0].s)]);
      await sleep(5);
    }
  })();
  const sent = [];
  const t0 = performance.now();
  await Promise.all(
    lanes.map(async (msgs, i) => {
      let window = [];
      for (const m of msgs) {
        const at = performance.now();
        window.push(pubs[i].js.publish(m.subject, m.body, { msgID: m.msgID, headers: m.headers }).then((ack) => sent.push([ack.seq, at])));
        if (window.length >= 256) {
          await Promise.all(window);
          window = [];
        }
      }
      await Promise.all(window);
    }),
  );
  const publishedMs = performance.now() - t0;
  const last = sent.reduce((m, [seq]) => Math.max(m, seq), 0);
  while (seen.length === 0 || seen.at(-1)[1] < last) await sleep(5);
  polling = false;
  await poller;
  await pgc.end();
  await Promise.all(pubs.map((p) => p.nc.close()));
  const projectedMs = seen.find(([, s]) => s >= last)[0] - t0;
  // The first poll at or past each event's sequence (polls are in time order, the checkpoint only grows).
  const latencies = sent.map(([seq, at]) => {
    let lo = 0;
    let hi = seen.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (seen[mid][1] >= seq) hi = mid;
      else lo = mid + 1;
    }
    return seen[lo][0] - at;
  });
  latencies.sort((a, b) => a - b);
  const q = (p) => Math.round(latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)]);
  return {
    publishers: PUBLISHERS,
    events: sent.length,
    published_ms: Math.round(publishedMs),
    offered_events_per_s: Math.round(sent.length / (publishedMs / 1000)),
    projected_ms: Math.round(projectedMs),
    events_per_s: Math.round(sent.length / (projectedMs / 1000)),
    publish_to_row_ms: { p50: q(0.5), p99: q(0.99), max: Math.round(latencies.at(-1)) },
  };
}

function timed(args, env) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [bin, ...args], { env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`jobledger ${args.join(' ')} exited ${r.status}: ${r.stderr}${r.stdout.slice(-2000)}`);
  return { ms: Math.round(ms), out: r.stdout.trim().split('\n').at(-1) };
}

const keep = process.argv.includes('--keep');
const count = Number(process.argv.slice(2).find((a) => a !== '--keep') ?? 10_000);
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'jobledger-bench-replay-'));
fs.chmodSync(home, 0o755);
const env = { ...process.env, JOBLEDGER_HOME: home };
delete env.JOBLEDGER_NATS_URL;
delete env.DATABASE_URL;
try {
  execFileSync(process.execPath, [bin, 'up', '--detach', '--agents', 'bench-replay-agent'], { env, stdio: 'ignore' });
  const state = JSON.parse(fs.readFileSync(path.join(home, 'state.json'), 'utf8'));
  const pki = path.join(home, 'pki');
  const auth = { credsFile: path.join(pki, 'admin.creds'), caFile: path.join(pki, 'ca.pem') };
  const ledger = await openLedger({ natsUrl: state.natsUrl, stream: state.stream, name: 'bench-replay', auth, ensure: false });
  const { signers, master } = await signedFleet(ledger, pki);
  const databaseUrl = execFileSync(process.execPath, [bin, 'db', 'url'], { env, encoding: 'utf8' }).trim();
  const live = await projectorLive({ state, auth, databaseUrl, signers, master });
  const appended = live.events;
  await ledger.nc.close();
  // Measured as the replay reads: with the CLI's credentials.
  const reader = await openLedger({
    natsUrl: state.natsUrl,
    stream: state.stream,
    name: 'bench-ceiling',
    auth: { credsFile: state.natsCredsFile, caFile: state.natsCaFile },
    ensure: false,
  });
  const ceiling = await measureCeiling({ ledger: reader, databaseUrl });
  await reader.nc.close();
  const replay = timed(['replay', '--into', 'rebuilt'], env);
  const verify = timed(['audit', 'verify'], env);
  const explain = await explainReplay({ home, env, bin, databaseUrl });
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  const { rows: dead } = await c.query('SELECT count(*)::int AS n FROM dead_letters').finally(() => c.end());
  const streamEvents = ceiling.read.messages;
  const rate = (ms) => Math.round(streamEvents / (ms / 1000));
  process.stdout.write(
    JSON.stringify({
      jobs: count,
      events: appended,
      stream_events: streamEvents,
      dead_letters: dead[0].n,
      ceiling,
      projector_live: { ...live, of_ceiling: ratio(live.events_per_s, ceiling.pipeline.events_per_s) },
      replay: { ...replay, events_per_s: rate(replay.ms), of_ceiling: ratio(rate(replay.ms), ceiling.pipeline.events_per_s) },
      verify: { ...verify, events_per_s: rate(verify.ms), of_ceiling: ratio(rate(verify.ms), ceiling.pipeline.events_per_s) },
      explain,
      ...(keep ? { home } : {}),
    }) + '\n',
  );
} finally {
  if (!keep) {
    spawnSync(process.execPath, [bin, 'down'], { env, stdio: 'ignore' });
    fs.rmSync(home, { recursive: true, force: true });
  }
}
