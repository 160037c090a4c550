// The projector draining a backlog (not part of the test suite):
//
//   node bench/backlog.js [events=1000000]
//
// Starts a ledger with `up --detach`, stops its projector (SIGSTOP: the supervisor sees nothing),
// appends at least `events` signed events (bench/ledger-events.js, 4 publishing connections),
// then lets the projector go on (SIGCONT) and samples its RSS (/proc/<pid>/status, every 250 ms,
// worker threads included) and its checkpoint until it has applied the last one. Target: under
// 300 MB RSS all along. Prints one JSON line.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { encodeEvent } from '@jobledger/core';
import { openLedger } from '../packages/runtime/dist/index.js';
import { events, signedFleet } from './ledger-events.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'packages/cli/bin/jobledger.js');
const target = Number(process.argv[2] ?? 1_000_000);
const PUBLISHERS = 4;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const rssMb = (pid) => {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
};

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'jobledger-bench-backlog-'));
fs.chmodSync(home, 0o755);
const env = { ...process.env, JOBLEDGER_HOME: home };
delete env.JOBLEDGER_NATS_URL;
delete env.DATABASE_URL;
let stopped;
try {
  execFileSync(process.execPath, [bin, 'up', '--detach', '--agents', 'bench-backlog-agent'], { env, stdio: 'ignore' });
  const state = JSON.parse(fs.readFileSync(path.join(home, 'state.json'), 'utf8'));
  const pki = path.join(home, 'pki');
  const auth = { credsFile: path.join(pki, 'admin.creds'), caFile: path.join(pki, 'ca.pem') };
  const databaseUrl = execFileSync(process.execPath, [bin, 'db', 'url'], { env, encoding: 'utf8' }).trim();
  const projector = Number(fs.readFileSync(path.join(home, 'run', 'projector.pid'), 'utf8').split(' ')[0]);
  const pubs = await Promise.all(
    Array.from({ length: PUBLISHERS }, (_, i) =>
      openLedger({ natsUrl: state.natsUrl, stream: state.stream, name: `bench-backlog-${i}`, auth, ensure: false }),
    ),
  );
  const { signers, master } = await signedFleet(pubs[0], pki);
  const rssBefore = rssMb(projector);
  process.kill(projector, 'SIGSTOP');
  stopped = projector;

  // Whole jobs (about 14.5 events each) until the target is reached, published by 4 connections.
  const source = events(Math.ceil(target / 14));
  let appended = 0;
  let last = 0;
  const t0 = performance.now();
  await Promise.all(
    pubs.map(async (p) => {
      let window = [];
      for (let n = source.next(); !n.done; n = source.next()) {
        const [subject, msgID, ev] = n.value;
        const body = encodeEvent(ev);
        const signer = ev.type === 'job.published' ? master : signers.get(ev.data.id);
        window.push(
          p.js.publish(subject, body, { msgID, headers: signer.headers(subject, body) }).then((ack) => (last = Math.max(last, ack.seq))),
        );
        appended++;
        if (window.length >= 500) {
          await Promise.all(window);
          window = [];
        }
      }
      await Promise.all(window);
    }),
  );
  const appendMs = performance.now() - t0;
  await Promise.all(pubs.map((p) => p.nc.close()));

  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const checkpoint = async () =>
    Number((await db.query('SELECT coalesce(max(last_seq), 0)::bigint AS s FROM projector_checkpoint')).rows[0].s);
  const from = await checkpoint();
  const samples = [];
  process.kill(projector, 'SIGCONT');
  stopped = undefined;
  const t1 = performance.now();
  let seq = from;
  while (seq < last) {
    samples.push(rssMb(projector));
    await sleep(250);
    seq = await checkpoint();
  }
  const drainMs = performance.now() - t1;
  await db.end();
  samples.sort((a, b) => a - b);
  const r = (x) => +x.toFixed(1);
  process.stdout.write(
    JSON.stringify({
      bench: 'projector draining a backlog',
      events: appended,
      backlog: last - from,
      append_ms: Math.round(appendMs),
      drain_ms: Math.round(drainMs),
      events_per_s: Math.round((last - from) / (drainMs / 1000)),
      rss_mb: { before: r(rssBefore), p50: r(samples[Math.floor(samples.length / 2)] ?? 0), max: r(samples.at(-1) ?? 0), target: '< 300' },
    }) + '\n',
  );
} finally {
  if (stopped) process.kill(stopped, 'SIGCONT');
  spawnSync(process.execPath, [bin, 'down'], { env, stdio: 'ignore' });
  fs.rmSync(home, { recursive: true, force: true });
}
