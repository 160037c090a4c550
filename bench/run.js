// Benchmarks (not part of the test suite): `npm run bench`.
//
// ping: wall time of `npx jobledger run '*' test.ping` against a ledger started with `up`,
// for 3 agent processes and for one process hosting 100 agent ids.
//
// list_jobs: with 100,000 jobs in the read models (bench/seed-jobs.js), the SQL query behind
// `jobs.list_jobs` (default page, search_function='cmd.*', start_time) and the whole
// `npx jobledger runner jobs.list_jobs …` command. Targets: query < 100 ms, command < 1 s.
//
// replay: 10,000 jobs (`BENCH_REPLAY_JOBS`) appended to a ledger's stream, then the time and speed
// of `npx jobledger replay --into rebuilt` and of `npx jobledger audit verify` (bench/replay.js).
//
// `node bench/run.js [ping] [list_jobs] [replay]` runs only the named benchmarks (default: all).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { seedJobs } from './seed-jobs.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'packages/cli/bin/jobledger.js');
const runs = Number(process.env.BENCH_RUNS ?? 5);

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { runs: s.length, median: s[Math.floor((s.length - 1) / 2)], p90: at(0.9), min: s[0], max: s[s.length - 1] };
}

function bench(name, agents, extraEnv = {}) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'jobledger-bench-'));
  fs.chmodSync(home, 0o755);
  const env = { ...process.env, JOBLEDGER_HOME: home, ...extraEnv };
  delete env.JOBLEDGER_NATS_URL;
  delete env.DATABASE_URL;
  try {
    execFileSync(process.execPath, [bin, 'up', '--detach', '--agents', agents], { env, stdio: 'ignore' });
    const expected = agents.split(',').length;
    const times = [];
    for (let i = 0; i < runs + 1; i++) {
      const t0 = process.hrtime.bigint();
      const r = spawnSync('npx', ['jobledger', 'run', '*', 'test.ping'], { env, cwd: root, encoding: 'utf8' });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const returned = (r.stdout.match(/^ {4}True$/gm) ?? []).length;
      if (r.status !== 0 || returned !== expected)
        throw new Error(`${name}: run ${i} exit ${r.status}, ${returned}/${expected} returns\n${r.stderr}`);
      if (i > 0) times.push(ms); // the first run warms the caches
    }
    console.log(JSON.stringify({ bench: name, unit: 'ms', ...stats(times) }));
  } finally {
    spawnSync(process.execPath, [bin, 'down'], { env, stdio: 'ignore' });
    fs.rmSync(home, { recursive: true, force: true });
  }
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
        console.log(
          JSON.stringify({ bench: `jobs.list_jobs SQL, ${name}, ${count} jobs`, unit: 'ms', rows, target: '< 100', ...stats(times) }),
        );
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
      console.log(
        JSON.stringify({
          bench:
            `${cmd === 'npx' ? 'npx jobledger' : 'node jobledger.js'} runner jobs.list_jobs ${words.join(' ')}`.trim() + `, ${count} jobs`,
          unit: 'ms',
          target: '< 1000',
          ...stats(times),
        }),
      );
    }
  } finally {
    spawnSync(process.execPath, [bin, 'down'], { env, stdio: 'ignore' });
    fs.rmSync(home, { recursive: true, force: true });
  }
}

if (wanted('ping')) bench("npx jobledger run '*' test.ping, 3 agents", '192.168.153.141,192.168.153.142,192.168.153.136');
if (wanted('list_jobs')) await benchListJobs();
if (wanted('replay')) {
  const r = spawnSync(process.execPath, [path.join(root, 'bench/replay.js'), process.env.BENCH_REPLAY_JOBS ?? '10000'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`bench/replay.js exited ${r.status}`);
  process.stdout.write(r.stdout);
}
