// Benchmarks (not part of the test suite): `npm run bench`.
//
// ping: wall time of `npx jobledger run '*' test.ping` against a ledger started with `up`,
// for 3 agent processes and for one process hosting 100 agent ids.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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

bench("npx jobledger run '*' test.ping, 3 agents", '192.168.153.141,192.168.153.142,192.168.153.136');
