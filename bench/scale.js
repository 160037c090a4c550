// Scale benchmarks (issue "scale out and survive"), run by `npm run bench` or `node bench/run.js scale`.
//
// fleet: for 100, 300 and 1,000 ids in 4 agent processes (`up --agents 'scale-[1-N]'
// --agent-processes 4`), 20 runs of `jobledger run '*' test.ping --show-jid`: the time until the
// CLI has printed all N returns, and until all N rows are in salt_returns (polled every 5 ms);
// then the RSS of each agent process. Targets: 1,000 ids p99 <= 1 s at the CLI; an agent
// process <= 150 MB RSS for 250 ids.
//
// cluster: 10 ids, publish-to-projected (the run's start until its 10 rows are projected) p50/p99
// with one nats-server (R1) and with `up --cluster 3` (R3); then the stream leader's node is killed
// and the time until the stream has a leader again and a publish is stored is measured.
//
// Writes bench/results/scale.json, the chart docs/benchmarks-scale.svg and its section of
// docs/benchmarks.md.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'packages/cli/bin/jobledger.js');
const RUNS = Number(process.env.BENCH_SCALE_RUNS ?? 20);
const SIZES = (process.env.BENCH_SCALE_SIZES ?? '100,300,1000').split(',').map(Number);

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
function summary(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const r = (x) => +x.toFixed(1);
  return { runs: s.length, p50: r(quantile(s, 0.5)), p99: r(quantile(s, 0.99)), min: r(s[0]), max: r(s[s.length - 1]) };
}

function makeHome() {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'jobledger-bench-scale-'));
  fs.chmodSync(home, 0o755);
  const env = { ...process.env, JOBLEDGER_HOME: home };
  delete env.JOBLEDGER_NATS_URL;
  delete env.DATABASE_URL;
  return { home, env };
}

function down({ home, env }) {
  spawnSync(process.execPath, [bin, 'down'], { env, stdio: 'ignore' });
  fs.rmSync(home, { recursive: true, force: true });
}

function recordedPids(home) {
  const dir = path.join(home, 'run');
  return Object.fromEntries(
    fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.pid'))
      .map((f) => [f.slice(0, -4), Number(fs.readFileSync(path.join(dir, f), 'utf8').split(' ')[0])]),
  );
}

const rssMb = (pid) => {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? +(Number(m[1]) / 1024).toFixed(1) : undefined;
};

/**
 * One `run '*' test.ping --show-jid`: ms from its start until it printed `expected` returns, and
 * until `expected` rows of its jid are projected.
 */
function timedPing(env, db, expected, args = []) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [bin, 'run', '*', 'test.ping', '--show-jid', ...args], { env, cwd: root });
    let out = '';
    let printed;
    let projected;
    let polling = false;
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    const poll = async (jid) => {
      if (polling) return;
      polling = true;
      while (projected === undefined) {
        const { rows } = await db.query('select count(*)::int as n from salt_returns where jid = $1', [jid]);
        if (rows[0].n >= expected) projected = performance.now() - t0;
        else await new Promise((r) => setTimeout(r, 5));
      }
    };
    let pollDone;
    child.stdout.on('data', (b) => {
      out += b;
      const jid = /\b(\d{20})\b/.exec(out)?.[1];
      if (jid && !polling) pollDone = poll(jid).catch(reject);
      if (printed === undefined && (out.match(/^ {4}True$/gm) ?? []).length >= expected) printed = performance.now() - t0;
    });
    child.on('exit', async (code) => {
      if (code !== 0 || printed === undefined)
        return reject(new Error(`run exited ${code}, ${(out.match(/^ {4}True$/gm) ?? []).length}/${expected} returns\n${err}`));
      await pollDone;
      resolve({ printed, projected });
    });
  });
}

export async function benchFleet(size) {
  const h = makeHome();
  try {
    execFileSync(process.execPath, [bin, 'up', '--detach', '--agents', `scale-[1-${size}]`, '--agent-processes', '4'], {
      env: h.env,
      stdio: 'ignore',
      timeout: 600_000,
    });
    const db = new pg.Client({
      connectionString: execFileSync(process.execPath, [bin, 'db', 'url'], { env: h.env, encoding: 'utf8' }).trim(),
    });
    await db.connect();
    try {
      await timedPing(h.env, db, size); // warm-up: every process has its consumer and its caches
      const printed = [];
      const projected = [];
      for (let i = 0; i < RUNS; i++) {
        const r = await timedPing(h.env, db, size);
        printed.push(r.printed);
        projected.push(r.projected);
      }
      const pids = recordedPids(h.home);
      const rss = Object.fromEntries(
        Object.entries(pids)
          .filter(([name]) => /^agent-\d+$/.test(name))
          .map(([name, pid]) => [name, rssMb(pid)]),
      );
      const line = {
        bench: `fleet of ${size} ids in 4 agent processes, run '*' test.ping`,
        ids: size,
        unit: 'ms',
        cli_all_returns: summary(printed),
        all_rows_projected: summary(projected),
        agent_rss_mb: rss,
        ids_per_process: Math.ceil(size / 4),
      };
      const rssValues = Object.values(rss);
      const meanRss = rssValues.reduce((a, b) => a + b, 0) / Math.max(1, rssValues.length);
      line.agent_rss_kb_per_id = Math.round((meanRss * 1024) / line.ids_per_process);
      console.log(JSON.stringify(line));
      return line;
    } finally {
      await db.end();
    }
  } finally {
    down(h);
  }
}

async function streamLeader(env) {
  // The admin credential of that home, through the project's own runtime (same as the CLI's).
  const { connectNats } = await import('../packages/runtime/dist/index.js');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const state = JSON.parse(fs.readFileSync(path.join(env.JOBLEDGER_HOME, 'state.json'), 'utf8'));
  const pki = path.join(env.JOBLEDGER_HOME, 'pki');
  const nc = await connectNats({
    servers: state.natsUrl,
    name: 'bench-scale',
    auth: { credsFile: path.join(pki, 'admin.creds'), caFile: path.join(pki, 'ca.pem') },
    maxReconnectAttempts: -1,
    reconnectTimeWait: 50,
  });
  const jsm = await jetstreamManager(nc, { timeout: 500 });
  return {
    leader: async () => (await jsm.streams.info('LEDGER')).cluster?.leader,
    close: () => nc.close(),
  };
}

async function benchCluster(nodes) {
  const h = makeHome();
  try {
    const args = ['up', '--detach', '--agents', 'cl-[1-10]', '--agent-processes', '2', ...(nodes > 1 ? ['--cluster', String(nodes)] : [])];
    execFileSync(process.execPath, [bin, ...args], { env: h.env, stdio: 'ignore', timeout: 600_000 });
    const db = new pg.Client({
      connectionString: execFileSync(process.execPath, [bin, 'db', 'url'], { env: h.env, encoding: 'utf8' }).trim(),
    });
    await db.connect();
    const projected = [];
    try {
      await timedPing(h.env, db, 10);
      for (let i = 0; i < RUNS; i++) projected.push((await timedPing(h.env, db, 10)).projected);
    } finally {
      await db.end();
    }
    const line = { bench: `publish to projected, 10 ids, R${nodes}`, replicas: nodes, unit: 'ms', ...summary(projected) };
    if (nodes > 1) {
      const s = await streamLeader(h.env);
      try {
        const before = await s.leader();
        const node = before === 'jobledger-1' ? 'nats-server' : `nats-server-${before.split('-')[1]}`;
        const pid = recordedPids(h.home)[node];
        const t0 = performance.now();
        process.kill(pid, 'SIGKILL');
        // Until a leader answers again: another node, or the killed one's restarted server
        // (up restarts it after 1 s) when it wins the election — then only after a moment
        // without a leader was seen, or the old leader's name would end the wait at once.
        let gap = false;
        for (;;) {
          const after = await s.leader().catch(() => undefined);
          if (after === undefined) gap = true;
          else if (after !== before || gap) break;
          if (performance.now() - t0 > 60_000) throw new Error(`the stream still reports its leader ${before} 60 s after it was killed`);
          await new Promise((r) => setTimeout(r, 20));
        }
        line.leaderless_ms = +(performance.now() - t0).toFixed(0);
        // And the whole path again: a run that is published, answered and printed.
        const r = spawnSync(process.execPath, [bin, 'run', '*', 'test.ping'], { env: h.env, encoding: 'utf8' });
        line.first_run_after_kill_ms = +(performance.now() - t0).toFixed(0);
        line.first_run_returns = (r.stdout.match(/^ {4}True$/gm) ?? []).length;
      } finally {
        await s.close();
      }
    }
    console.log(JSON.stringify(line));
    return line;
  } finally {
    down(h);
  }
}

/** Grouped bars: p50 and p99 of the CLI's time and of the projection, per fleet size. */
function chart(fleet) {
  const W = 640;
  const H = 320;
  const pad = { l: 60, r: 20, t: 40, b: 50 };
  const series = [
    ['CLI p50', (f) => f.cli_all_returns.p50, '#4c78a8'],
    ['CLI p99', (f) => f.cli_all_returns.p99, '#9ecae9'],
    ['rows p50', (f) => f.all_rows_projected.p50, '#f58518'],
    ['rows p99', (f) => f.all_rows_projected.p99, '#ffbf79'],
  ];
  const max = Math.max(1000, ...fleet.flatMap((f) => series.map(([, v]) => v(f))));
  const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
  const group = (W - pad.l - pad.r) / fleet.length;
  const bar = (group * 0.8) / series.length;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<title>run '*' test.ping: time to all returns at the CLI and to all rows projected, by fleet size</title>`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">run '*' test.ping, 4 agent processes (${RUNS} runs each)</text>`,
  ];
  for (let v = 0; v <= max; v += max > 2000 ? 500 : 250) {
    parts.push(`<line x1="${pad.l}" x2="${W - pad.r}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    parts.push(`<text x="${pad.l - 6}" y="${y(v) + 4}" text-anchor="end">${v} ms</text>`);
  }
  parts.push(
    `<line x1="${pad.l}" x2="${W - pad.r}" y1="${y(1000)}" y2="${y(1000)}" stroke="#c00" stroke-dasharray="4 3"/>`,
    `<text x="${W - pad.r}" y="${y(1000) - 4}" text-anchor="end" fill="#c00">target: 1,000 ids p99 ≤ 1 s</text>`,
  );
  fleet.forEach((f, i) => {
    const x0 = pad.l + i * group + group * 0.1;
    series.forEach(([, v, color], j) => {
      const val = v(f);
      parts.push(
        `<rect x="${(x0 + j * bar).toFixed(1)}" y="${y(val).toFixed(1)}" width="${(bar - 2).toFixed(1)}" height="${(H - pad.b - y(val)).toFixed(1)}" fill="${color}"><title>${f.ids} ids: ${val} ms</title></rect>`,
      );
    });
    parts.push(`<text x="${x0 + group * 0.4}" y="${H - pad.b + 16}" text-anchor="middle">${f.ids} ids</text>`);
  });
  series.forEach(([name, , color], j) => {
    const x = pad.l + j * 120;
    parts.push(`<rect x="${x}" y="${H - 18}" width="10" height="10" fill="${color}"/><text x="${x + 14}" y="${H - 9}">${name}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** An agent process's RSS per hosted id: what one more id costs, between the smallest and the largest fleet. */
function perId(fleet) {
  const mean = (f) => Object.values(f.agent_rss_mb).reduce((a, b) => a + b, 0) / Object.values(f.agent_rss_mb).length;
  const [a, b] = [fleet[0], fleet.at(-1)];
  if (!a || !b || a === b) return '';
  const kb = Math.round(((mean(b) - mean(a)) * 1024) / (b.ids_per_process - a.ids_per_process));
  return `Agent RSS per hosted id: about ${kb} KB for each id more (mean RSS of a process from ${a.ids_per_process} to ${b.ids_per_process} ids a process: ${mean(a).toFixed(1)} → ${mean(b).toFixed(1)} MB); the rest is the process itself (Node, the NATS connection, the modules).`;
}

function markdown(fleet, cluster, machine) {
  const rows = fleet.map(
    (f) =>
      `| ${f.ids} | ${f.ids_per_process} | ${f.cli_all_returns.p50} | ${f.cli_all_returns.p99} | ${f.all_rows_projected.p50} | ${f.all_rows_projected.p99} | ${Object.values(f.agent_rss_mb).join(', ')} |`,
  );
  const crows = cluster.map(
    (c) => `| R${c.replicas} | ${c.p50} | ${c.p99} | ${c.leaderless_ms ?? '–'} | ${c.first_run_after_kill_ms ?? '–'} |`,
  );
  return [
    '<!-- scale:begin (written by bench/scale.js; do not edit by hand) -->',
    '## Scale',
    '',
    `Measured by \`npm run bench\` (\`node bench/run.js scale\`) on ${machine}; figures in \`bench/results/scale.json\`.`,
    '',
    '![time to all returns and to all rows, by fleet size](benchmarks-scale.svg)',
    '',
    `\`run '*' test.ping\` against \`up --agents 'scale-[1-N]' --agent-processes 4\`, ${RUNS} runs after one warm-up (ms; targets: 1,000 ids p99 ≤ 1,000 ms at the CLI, ≤ 150 MB RSS for 250 ids a process):`,
    '',
    '| ids | ids a process | CLI p50 | CLI p99 | rows p50 | rows p99 | agent processes RSS (MB) |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    perId(fleet),
    '',
    `Cluster: 10 ids, from the start of \`run\` until its 10 rows are projected (ms), one nats-server (R1) and \`up --cluster 3\` (R3); then kill -9 of the stream leader's node: ms until another node leads, and until a \`run\` started then has printed every return:`,
    '',
    '| replicas | p50 | p99 | without a leader | first run after the kill |',
    '|---|---|---|---|---|',
    ...crows,
    '<!-- scale:end -->',
  ].join('\n');
}

export async function benchScale() {
  const fleet = [];
  for (const size of SIZES) fleet.push(await benchFleet(size));
  const cluster = [await benchCluster(1), await benchCluster(3)];
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
  fs.writeFileSync(
    path.join(root, 'bench/results/scale.json'),
    JSON.stringify({ date: new Date().toISOString(), machine, runs: RUNS, fleet, cluster }, null, 2) + '\n',
  );
  fs.writeFileSync(path.join(root, 'docs/benchmarks-scale.svg'), chart(fleet));
  const doc = path.join(root, 'docs/benchmarks.md');
  const section = markdown(fleet, cluster, machine);
  const old = fs.existsSync(doc) ? fs.readFileSync(doc, 'utf8') : '# Benchmarks\n\nWritten by `npm run bench`.\n';
  const next = /<!-- scale:begin[\s\S]*?<!-- scale:end -->/.test(old)
    ? old.replace(/<!-- scale:begin[\s\S]*?<!-- scale:end -->/, section)
    : `${old.trimEnd()}\n\n${section}\n`;
  fs.writeFileSync(doc, next);
}
