// `GET /jobs` of the HTTP API over a large job history (`node bench/run.js api_jobs`):
// 100,000 jobs (`BENCH_JOBS`) seeded into the read models of a ledger started with `up` and the
// API of master.yaml's rest_cherrypy: section, then each request 21 times (the first left out):
// the server's time (its `Server-Timing: app;dur=` header, request in to reply out) and the
// client's. The web UI's first page (/ui/jobs) is timed the same way. Target: the first page
// (50 jobs, the UI's page) in ≤ 50 ms server time.
//
// Writes bench/results/api-jobs.json and its section of docs/benchmarks.md.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import bcrypt from 'bcryptjs';
import { seedJobs } from './seed-jobs.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'packages/cli/bin/jobledger.js');
const RUNS = 20;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: +at(0.5).toFixed(1), p99: +at(0.99).toFixed(1), min: +s[0].toFixed(1), max: +s.at(-1).toFixed(1) };
}

function section(rows, count, machine) {
  return [
    '<!-- api-jobs:begin (written by bench/api-jobs.js) -->',
    '## The HTTP API: `GET /jobs` over a large history',
    '',
    `Measured by \`npm run bench\` (\`node bench/run.js api_jobs\`) on ${machine}, ${count.toLocaleString('en')} jobs in the read models; ` +
      `server time from the API's \`Server-Timing\` header, ${RUNS} requests each; figures in \`bench/results/api-jobs.json\`. Target: the first page in ≤ 50 ms server time.`,
    '',
    '| request | rows | server p50 ms | server p99 ms | client p50 ms |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| \`${r.request}\` | ${r.rows ?? ''} | ${r.server.p50} | ${r.server.p99} | ${r.client.p50} |`),
    '<!-- api-jobs:end -->',
  ].join('\n');
}

export async function benchApiJobs() {
  const count = Number(process.env.BENCH_JOBS ?? 100_000);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'jobledger-bench-api-'));
  fs.chmodSync(home, 0o755);
  const port = await freePort();
  const password = 'bench-' + Math.random().toString(36).slice(2);
  fs.writeFileSync(path.join(home, 'bench-users.htpasswd'), `bench:${bcrypt.hashSync(password, 8)}\n`);
  fs.writeFileSync(
    path.join(home, 'master.yaml'),
    `rest_cherrypy:\n  port: ${port}\n  disable_ssl: True\n  rate_limit: 100000\nexternal_auth:\n  file:\n    ^filename: bench-users.htpasswd\n    ^filetype: htpasswd\n    bench:\n      - '.*'\n      - '@runner'\n`,
  );
  const env = { ...process.env, JOBLEDGER_HOME: home, JOBLEDGER_KEEP_JOBS_SECONDS: '0' };
  delete env.JOBLEDGER_NATS_URL;
  delete env.DATABASE_URL;
  const base = `http://127.0.0.1:${port}`;
  try {
    execFileSync(process.execPath, [bin, 'up', '--detach', '--agents', 'bench1'], { env, stdio: 'ignore' });
    const url = execFileSync(process.execPath, [bin, 'db', 'url'], { env, encoding: 'utf8' }).trim();
    const seeded = await seedJobs(url, { count });
    console.log(JSON.stringify({ bench: 'seed jobs (bench/seed-jobs.js)', ...seeded }));
    const login = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ username: 'bench', password, eauth: 'file' }),
    });
    if (login.status !== 200) throw new Error(`login: ${login.status} ${await login.text()}`);
    const token = (await login.json()).return[0].token;

    const newest = await (await fetch(`${base}/jobs?limit=1`, { headers: { 'X-Auth-Token': token } })).json();
    const someJid = Object.keys(newest.return[0])[0];
    const cases = [
      '/jobs?limit=50',
      '/jobs?limit=50&hide_internal=true',
      '/jobs?limit=50&status=failed',
      '/jobs?limit=50&user=alice',
      '/jobs?limit=50&search_function=cmd.*',
      `/jobs?limit=50&after=${someJid}`,
      '/jobs',
      '/ui/jobs',
    ];
    const rows = [];
    for (const request of cases) {
      const server = [];
      const client = [];
      let listed;
      for (let i = 0; i <= RUNS; i++) {
        const t0 = process.hrtime.bigint();
        const r = await fetch(base + request, {
          headers: {
            'X-Auth-Token': token,
            Cookie: `session_id=${token}`,
            Accept: request.startsWith('/ui') ? 'text/html' : 'application/json',
          },
        });
        const text = await r.text();
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (r.status !== 200) throw new Error(`${request}: ${r.status} ${text.slice(0, 300)}`);
        const dur = /app;dur=([\d.]+)/.exec(r.headers.get('server-timing') ?? '');
        if (!dur) throw new Error(`${request}: no Server-Timing header`);
        if (i === 0) {
          listed = request.startsWith('/ui') ? (text.match(/<tr data-jid=/g) ?? []).length : Object.keys(JSON.parse(text).return[0]).length;
          continue;
        }
        server.push(Number(dur[1]));
        client.push(ms);
      }
      const row = { request, rows: listed, server: stats(server), client: stats(client) };
      rows.push(row);
      console.log(
        JSON.stringify({
          bench: `GET ${request}, ${count} jobs`,
          unit: 'ms',
          ...row,
          ...(request === '/jobs?limit=50' ? { target: '<= 50 server' } : {}),
        }),
      );
    }
    const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
    fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
    fs.writeFileSync(
      path.join(root, 'bench/results/api-jobs.json'),
      JSON.stringify({ date: new Date().toISOString(), machine, jobs: count, runs: RUNS, rows }, null, 2) + '\n',
    );
    const doc = path.join(root, 'docs/benchmarks.md');
    const old = fs.existsSync(doc) ? fs.readFileSync(doc, 'utf8') : '# Benchmarks\n\nWritten by `npm run bench`.\n';
    const next = section(rows, count, machine);
    const re = /<!-- api-jobs:begin[\s\S]*?<!-- api-jobs:end -->/;
    fs.writeFileSync(doc, re.test(old) ? old.replace(re, next) : `${old.trimEnd()}\n\n${next}\n`);
  } finally {
    spawnSync(process.execPath, [bin, 'down'], { env, stdio: 'ignore' });
    fs.rmSync(home, { recursive: true, force: true });
  }
}
