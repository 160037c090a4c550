// Benchmarks (not part of the test suite): `npm run bench`.
//
// ping: wall time of `jobledger run '*' test.ping` (through npx, and node on the CLI's file)
// against a ledger started with `up` with 3 agent processes: as `up` runs it, TLS + JWT auth +
// signed events, and beside it, in the same run, against a plain nats-server (no TLS, no
// credentials: `JOBLEDGER_NATS_URL`), the cost of the security measured.
//
// list_jobs: with 100,000 jobs in the read models (bench/seed-jobs.js), the SQL query behind
// `jobs.list_jobs` (default page, search_function='cmd.*', start_time) and the whole
// `jobledger runner jobs.list_jobs …` command (npx, and node on the CLI file). Targets: query < 100 ms, command ≤ 200 ms.
//
// replay: 10,000 jobs (`BENCH_REPLAY_JOBS`) published in a live burst by 4 publishers while the
// projector applies them, then the ceiling of this machine on that stream (bench/ceiling.js),
// then `npx jobledger replay --into rebuilt` and `npx jobledger audit verify` (bench/replay.js):
// every throughput with its share of the ceiling, in bench/results/throughput.json and
// docs/benchmarks.md (with docs/benchmarks-throughput.svg).
//
// api_jobs: the HTTP API's GET /jobs (and the web UI's job list) over 100,000 jobs (bench/api-jobs.js).
//
// scale: fleets of 100, 300 and 1,000 ids, and the cluster's R1 / R3 and leader loss (bench/scale.js).
//
// backlog (with replay): the projector draining a backlog of 1,000,000 events (`BENCH_BACKLOG_EVENTS`,
// bench/backlog.js): its RSS and its rate, beside the replay step's ceiling.
//
// `node bench/run.js [ping] [list_jobs] [api_jobs] [replay [backlog]] [scale]` runs only the named benchmarks (default: all).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { benchApiJobs } from './api-jobs.js';
import { benchScale } from './scale.js';
import { writeThroughput } from './throughput-report.js';
import { seedJobs } from './seed-jobs.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'packages/cli/bin/jobledger.js');
// 15: on a shared 2-core VM single runs spread from 150 to 250 ms; the median of 5 moved by tens of ms.
const runs = Number(process.env.BENCH_RUNS ?? 15);

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { runs: s.length, median: s[Math.floor((s.length - 1) / 2)], p90: at(0.9), min: s[0], max: s[s.length - 1] };
}

/** A plain nats-server with JetStream on a free port (no TLS, no auth); stop() kills it. */
async function plainNats(dir) {
  const net = await import('node:net');
  const port = await new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
  const child = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.end(), resolve(true))).on('error', () => resolve(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `nats://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}

async function bench(name, agents, { plain = false } = {}) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'jobledger-bench-'));
  fs.chmodSync(home, 0o755);
  const env = { ...process.env, JOBLEDGER_HOME: home };
  delete env.JOBLEDGER_NATS_URL;
  delete env.DATABASE_URL;
  const nats = plain ? await plainNats(path.join(home, 'plain-nats')) : undefined;
  if (nats) env.JOBLEDGER_NATS_URL = nats.url;
  try {
    execFileSync(process.execPath, [bin, 'up', '--detach', '--agents', agents], { env, stdio: 'ignore' });
    const expected = agents.split(',').length;
    const results = [];
    // `jobledger` on PATH as `npm link -w packages/cli` puts it there: a link to the bin file.
    const linked = path.join(home, 'path-bin');
    fs.mkdirSync(linked);
    fs.symlinkSync(bin, path.join(linked, 'jobledger'));
    const onPath = { ...env, PATH: `${linked}:${env.PATH}` };
    for (const [how, cmd, args, cmdEnv] of [
      ['npx jobledger', 'npx', ['jobledger'], env],
      ['jobledger (on PATH, npm link)', 'jobledger', [], onPath],
      ['node packages/cli/bin/jobledger.js', process.execPath, [bin], env],
    ]) {
      const times = [];
      for (let i = 0; i < runs + 1; i++) {
        const t0 = process.hrtime.bigint();
        const r = spawnSync(cmd, [...args, 'run', '*', 'test.ping'], { env: cmdEnv, cwd: root, encoding: 'utf8' });
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const returned = (r.stdout.match(/^ {4}True$/gm) ?? []).length;
        if (r.status !== 0 || returned !== expected)
          throw new Error(`${name}: run ${i} exit ${r.status}, ${returned}/${expected} returns\n${r.stderr}`);
        if (i > 0) times.push(ms); // the first run warms the caches
      }
      const line = { bench: `${how} run '*' test.ping, ${name}`, unit: 'ms', target: '≤ 150', ...stats(times) };
      emit('ping', line);
      results.push(line);
    }
    return results;
  } finally {
    spawnSync(process.execPath, [bin, 'down'], { env, stdio: 'ignore' });
    nats?.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

/**
 * The CLI's figures (ping, list_jobs): printed, kept in bench/results/cli.json by part (a run of
 * one part keeps the other's last figures) and written as a section of docs/benchmarks.md.
 */
const cliFile = path.join(root, 'bench/results/cli.json');
const cli = fs.existsSync(cliFile) ? JSON.parse(fs.readFileSync(cliFile, 'utf8')) : {};
const fresh = new Set();
function emit(part, line) {
  console.log(JSON.stringify(line));
  if (!fresh.has(part)) cli[part] = [];
  fresh.add(part);
  cli[part].push(line);
}
function writeCli() {
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  fs.mkdirSync(path.dirname(cliFile), { recursive: true });
  fs.writeFileSync(cliFile, JSON.stringify({ ...cli, date: new Date().toISOString(), machine }, null, 2) + '\n');
  const ms = (v) => (v === undefined ? '–' : (+v).toFixed(1));
  const rows = [...(cli.ping ?? []), ...(cli.list_jobs ?? [])].map(
    (l) => `| ${l.bench} | ${ms(l.median)} | ${ms(l.p90 ?? (l.secured !== undefined ? undefined : l.max))} | ${l.target ?? ''} |`,
  );
  const section = [
    '<!-- cli:begin (written by bench/run.js ping, list_jobs; do not edit by hand) -->',
    '## The CLI',
    '',
    `Measured by \`npm run bench\` (\`node bench/run.js ping list_jobs\`) on ${machine}; figures in \`bench/results/cli.json\`. Wall time of the whole command, ms, ${runs} runs after one warm-up; targets of issue 11: \`run '*' test.ping\` with 3 local agents ≤ 150 ms, \`runner jobs.list_jobs\` over 100,000 jobs ≤ 200 ms. The "security cost" lines are TLS + JWT auth + signed events against a plain nats-server, same command.`,
    '',
    '| figure | median | p90 | target |',
    '|---|---|---|---|',
    ...rows,
    '<!-- cli:end -->',
  ].join('\n');
  const doc = path.join(root, 'docs/benchmarks.md');
  const old = fs.existsSync(doc) ? fs.readFileSync(doc, 'utf8') : '# Benchmarks\n\nWritten by `npm run bench`.\n';
  const marked = /<!-- cli:begin[\s\S]*?<!-- cli:end -->/;
  fs.writeFileSync(doc, marked.test(old) ? old.replace(marked, section) : `${old.trimEnd()}\n\n${section}\n`);
}

const only = process.argv.slice(2);
const wanted = (name) => only.length === 0 || only.includes(name);

async function benchListJobs() {
  const count = Number(process.env.BENCH_JOBS ?? 100_000);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'jobledger-bench-'));
  fs.chmodSync(home, 0o755);
  // 30 days of jobs: retention (Salt's keep_jobs, 24 h by default) must not clean them meanwhile.
  const env = { ...process.env, JOBLEDGER_HOME: home, JOBLEDGER_KEEP_JOBS_SECONDS: '0' };
  delete env.JOBLEDGER_NATS_URL;
  delete env.DATABASE_URL;
  try {
    execFileSync(process.execPath, [bin, 'up', '--detach', '--agents', 'bench1'], { env, stdio: 'ignore' });
    const url = execFileSync(process.execPath, [bin, 'db', 'url'], { env, encoding: 'utf8' }).trim();
    const seeded = await seedJobs(url, { count });
    console.log(JSON.stringify({ bench: 'seed jobs (bench/seed-jobs.js)', ...seeded }));

    const { listJobsSql, DEFAULT_LIST_LIMIT } = await import('../services/dispatcher/dist/index.js');
    const { normaliseListJobsFilters } = await import('../packages/core/dist/index.js');
    const weekAgo = new Date(Date.now() - 7 * 86_400_000).toISOString().slice(0, 19);
    const cases = [
      ['default page', {}, []],
      ["search_function='cmd.*'", { search_function: 'cmd.*' }, ['search_function=cmd.*']],
      [`start_time='${weekAgo}'`, { start_time: weekAgo }, [`start_time=${weekAgo}`]],
    ];

    // (a) the SQL behind jobs.list_jobs, as the dispatcher sends it
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      for (const [name, filters] of cases) {
        const q = listJobsSql({ filters: normaliseListJobsFilters(filters), limit: DEFAULT_LIST_LIMIT, offset: 0 });
        const times = [];
        let rows = 0;
        for (let i = 0; i < 21; i++) {
          const t0 = process.hrtime.bigint();
          rows = (await client.query(q)).rowCount;
          if (i > 0) times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        emit('list_jobs', { bench: `jobs.list_jobs SQL, ${name}, ${count} jobs`, unit: 'ms', rows, target: '< 100', ...stats(times) });
      }
    } finally {
      await client.end();
    }

    // (b) the whole command (and, for scale, the same without npx)
    const commands = [
      ...cases.map(([name, , words]) => ['npx', ['jobledger'], name, words]),
      [process.execPath, [bin], 'default page, node without npx', []],
    ];
    for (const [cmd, pre, name, words] of commands) {
      const times = [];
      for (let i = 0; i < runs + 1; i++) {
        const t0 = process.hrtime.bigint();
        const r = spawnSync(cmd, [...pre, 'runner', 'jobs.list_jobs', ...words], {
          env,
          cwd: root,
          encoding: 'utf8',
          maxBuffer: 64 << 20,
        });
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const listed = (r.stdout.match(/^\d{20}:$/gm) ?? []).length;
        if (r.status !== 0 || listed === 0) throw new Error(`runner jobs.list_jobs ${name}: exit ${r.status}, ${listed} jobs\n${r.stderr}`);
        if (i > 0) times.push(ms);
      }
      emit('list_jobs', {
        bench:
          `${cmd === 'npx' ? 'npx jobledger' : 'node jobledger.js'} runner jobs.list_jobs ${words.join(' ')}`.trim() + `, ${count} jobs`,
        unit: 'ms',
        target: '≤ 200',
        ...stats(times),
      });
    }
  } finally {
    spawnSync(process.execPath, [bin, 'down'], { env, stdio: 'ignore' });
    fs.rmSync(home, { recursive: true, force: true });
  }
}

if (wanted('ping')) {
  const agents = '192.168.153.141,192.168.153.142,192.168.153.136';
  const secured = await bench('3 agents, TLS + JWT auth + signed events', agents);
  const plain = await bench('3 agents, plain NATS (no TLS, no auth)', agents, { plain: true });
  for (const [i, s] of secured.entries()) {
    const p = plain[i];
    emit('ping', {
      bench: `security cost (${s.bench.split(' run ')[0]})`,
      unit: 'ms',
      median: +(s.median - p.median).toFixed(1),
      secured: s.median,
      plain: p.median,
    });
  }
  writeCli();
}
if (wanted('list_jobs')) {
  await benchListJobs();
  writeCli();
}
if (wanted('api_jobs')) await benchApiJobs();
if (wanted('replay')) {
  const r = spawnSync(process.execPath, [path.join(root, 'bench/replay.js'), process.env.BENCH_REPLAY_JOBS ?? '10000'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`bench/replay.js exited ${r.status}`);
  process.stdout.write(r.stdout);
  const throughput = JSON.parse(r.stdout.trim().split('\n').at(-1));
  if (wanted('backlog') || only.length === 0) {
    // The projector draining a backlog of 1,000,000 events (bench/backlog.js): RSS, and its rate beside the same ceiling.
    const b = spawnSync(process.execPath, [path.join(root, 'bench/backlog.js'), process.env.BENCH_BACKLOG_EVENTS ?? '1000000'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (b.status !== 0) throw new Error(`bench/backlog.js exited ${b.status}`);
    process.stdout.write(b.stdout);
    throughput.backlog = JSON.parse(b.stdout.trim().split('\n').at(-1));
  }
  writeThroughput(root, throughput);
}
if (wanted('scale')) await benchScale();
