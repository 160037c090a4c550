// Fills the read models of a jobledger database with many jobs, for benchmarks:
//
//   node bench/seed-jobs.js <DATABASE_URL> [count=100000] [days=30]
//
// Inserts `count` jobs (jobs + jids rows) with their returns (salt_returns rows) spread over the
// last `days` days: a realistic mix of functions (test.ping, cmd.run, state.apply,
// saltutil.find_job, runner jobs, …), targets (`*`, globs, list targets, compound), users and
// outcomes over a fleet of 8 agents. Rows are written in batches, as the projector writes them
// (one JSON document per statement), then the tables are analysed. Deterministic for a given
// count and `now`, so runs compare.
import pg from 'pg';

const FLEET = ['web1', 'web2', 'web3', 'web4', 'db1', 'db2', 'app-01', 'app-02'];
const MASTER = 'bench_master';

/** [value, weight] */
const FUNCTIONS = [
  ['test.ping', 28],
  ['cmd.run', 18],
  ['cmd.run_all', 4],
  ['cmd.retcode', 2],
  ['state.apply', 14],
  ['state.highstate', 4],
  ['grains.items', 5],
  ['saltutil.find_job', 12],
  ['pkg.install', 3],
  ['service.restart', 2],
  ['test.sleep', 3],
  ['runner.jobs.list_jobs', 3],
  ['runner.jobs.lookup_jid', 2],
];
const TARGETS = [
  [{ tgt: '*', tgt_type: 'glob' }, 30],
  [{ tgt: 'web*', tgt_type: 'glob' }, 14],
  [{ tgt: 'db*', tgt_type: 'glob' }, 8],
  [{ tgt: 'app-0?', tgt_type: 'glob' }, 6],
  [{ tgt: 'list', tgt_type: 'list' }, 20],
  [{ tgt: 'one', tgt_type: 'glob' }, 17],
  [{ tgt: 'G@os:Debian and web*', tgt_type: 'compound' }, 5],
];
const USERS = [
  ['root', 60],
  ['alice', 12],
  ['bob', 10],
  ['sudo_carol', 8],
  ['ci', 10],
];
const COMMANDS = ['uptime', 'df -h /', 'systemctl is-active nginx', 'cat /etc/os-release', 'ls /var/log', 'free -m', 'id'];

/** Small seeded PRNG (mulberry32). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function weighted(rand, table) {
  const total = table.reduce((n, [, w]) => n + w, 0);
  let x = rand() * total;
  for (const [v, w] of table) {
    x -= w;
    if (x < 0) return v;
  }
  return table[table.length - 1][0];
}

const pad = (n, w) => String(n).padStart(w, '0');

/** 20-digit jid of microseconds since the epoch (UTC). */
function jidOf(micros) {
  const d = new Date(Number(micros / 1000n));
  const frac = micros % 1_000_000n;
  return (
    pad(d.getUTCFullYear(), 4) +
    pad(d.getUTCMonth() + 1, 2) +
    pad(d.getUTCDate(), 2) +
    pad(d.getUTCHours(), 2) +
    pad(d.getUTCMinutes(), 2) +
    pad(d.getUTCSeconds(), 2) +
    pad(frac, 6)
  );
}

const stampOf = (ms) =>
  new Date(ms)
    .toISOString()
    .replace('Z', '')
    .replace(/\.(\d{3})$/, '.$1000');

function expectedMinions(rand, t) {
  if (t.tgt === '*') return [...FLEET];
  if (t.tgt === 'web*' || t.tgt === 'G@os:Debian and web*') return FLEET.filter((m) => m.startsWith('web'));
  if (t.tgt === 'db*') return FLEET.filter((m) => m.startsWith('db'));
  if (t.tgt === 'app-0?') return FLEET.filter((m) => m.startsWith('app-0'));
  const shuffled = [...FLEET].sort(() => rand() - 0.5);
  return shuffled.slice(0, t.tgt === 'one' ? 1 : 2 + Math.floor(rand() * 3)).sort();
}

function argsFor(rand, fun, jids) {
  switch (fun) {
    case 'cmd.run':
    case 'cmd.run_all':
    case 'cmd.retcode':
      return [COMMANDS[Math.floor(rand() * COMMANDS.length)]];
    case 'state.apply':
      return rand() < 0.5 ? ['nginx'] : ['base', { test: true, __kwarg__: true }];
    case 'saltutil.find_job':
      return [jids.length > 0 ? jids[jids.length - 1] : '20200101000000000000'];
    case 'pkg.install':
      return ['htop'];
    case 'service.restart':
      return ['nginx'];
    case 'test.sleep':
      return [Math.floor(rand() * 30)];
    default:
      return [];
  }
}

function returnFor(rand, fun, id) {
  const failed = rand() < 0.04;
  switch (fun) {
    case 'test.ping':
      return { ret: true, retcode: 0 };
    case 'cmd.run':
      return failed
        ? { ret: 'sh: 1: nope: not found', retcode: 127 }
        : { ret: ` 18:14:15 up ${Math.floor(rand() * 90)} days,  load average: 0.1`, retcode: 0 };
    case 'cmd.run_all':
      return { ret: { pid: 1000 + Math.floor(rand() * 50000), retcode: 0, stdout: 'ok', stderr: '' }, retcode: 0 };
    case 'state.apply':
    case 'state.highstate':
      return {
        ret: {
          'pkg_|-nginx_|-nginx_|-installed': { result: !failed, comment: 'All specified packages are already installed', changes: {} },
        },
        retcode: failed ? 2 : 0,
      };
    case 'grains.items':
      return { ret: { id, os: 'Debian', osrelease: '12', kernel: 'Linux', num_cpus: 2 }, retcode: 0 };
    case 'saltutil.find_job':
      return { ret: {}, retcode: 0 };
    default:
      return { ret: failed ? `ERROR executing '${fun}': failed` : true, retcode: failed ? 1 : 0 };
  }
}

const SQL = {
  jobs: `INSERT INTO jobs (jid, fun, arg, tgt, tgt_type, "user", metadata, minions, missing, expected, returned, failed, start_time, end_time, published_seq)
SELECT e->>'jid', e->>'fun', e->'arg', e->'tgt', e->>'tgt_type', e->>'user', nullif(e->'metadata', 'null'::jsonb), e->'minions', '[]'::jsonb,
       (e->>'expected')::int, (e->>'returned')::int, (e->>'failed')::int, (e->>'start_time')::timestamptz, (e->>'end_time')::timestamptz, NULL
FROM jsonb_array_elements($1::jsonb) AS e ON CONFLICT (jid) DO NOTHING`,
  jids: `INSERT INTO jids (jid, load) SELECT e->>'jid', e->'load' FROM jsonb_array_elements($1::jsonb) AS e ON CONFLICT (jid) DO NOTHING`,
  returns: `INSERT INTO salt_returns (fun, jid, "return", id, success, full_ret, alter_time)
SELECT e->>'fun', e->>'jid', coalesce(e->'return', 'null'::jsonb), e->>'id', CASE WHEN e->'success' = 'true'::jsonb THEN 'true' ELSE 'false' END, e,
       (e->>'alter_time')::timestamptz
FROM jsonb_array_elements($1::jsonb) AS e`,
};

/**
 * Inserts `count` jobs over the last `days` days before `now`. Returns what was written.
 * @param {string} databaseUrl
 * @param {{ count?: number, days?: number, now?: Date, batch?: number, log?: (s: string) => void }} [opts]
 */
export async function seedJobs(databaseUrl, opts = {}) {
  const count = opts.count ?? 100_000;
  const days = opts.days ?? 30;
  const now = (opts.now ?? new Date()).getTime();
  const batch = opts.batch ?? 2_000;
  const rand = rng(count * 31 + days);
  const spanMicros = BigInt(days) * 86_400_000_000n;
  const nowMicros = BigInt(now) * 1000n;

  // Sorted, distinct start times.
  const times = new Set();
  while (times.size < count) times.add(nowMicros - BigInt(Math.floor(rand() * Number(spanMicros))));
  const sorted = [...times].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let returns = 0;
  const started = Date.now();
  try {
    const seen = [];
    for (let i = 0; i < sorted.length; i += batch) {
      const jobs = [];
      const jids = [];
      const rets = [];
      for (const micros of sorted.slice(i, i + batch)) {
        const jid = jidOf(micros);
        const fun = weighted(rand, FUNCTIONS);
        const startMs = Number(micros / 1000n);
        const user = weighted(rand, USERS);
        const runner = fun.startsWith('runner.');
        const target = runner ? { tgt: MASTER, tgt_type: 'list' } : weighted(rand, TARGETS);
        const minions = runner ? [MASTER] : expectedMinions(rand, target);
        const tgt = runner
          ? MASTER
          : target.tgt === 'list' || target.tgt === 'one'
            ? target.tgt === 'one'
              ? minions[0]
              : minions
            : target.tgt;
        const tgtType = runner ? 'list' : target.tgt_type;
        const arg = runner ? [] : argsFor(rand, fun, seen);
        const metadata = rand() < 0.05 ? { ticket: `OPS-${Math.floor(rand() * 500)}`, team: rand() < 0.5 ? 'web' : 'db' } : null;
        let failed = 0;
        let returned = 0;
        let endMs = startMs;
        for (const id of minions) {
          if (!runner && rand() < 0.02) continue; // an agent that did not return
          const { ret, retcode } = runner ? { ret: { fun, jid, user, return: {}, success: true }, retcode: 0 } : returnFor(rand, fun, id);
          const at = startMs + 20 + Math.floor(rand() * (fun === 'state.apply' ? 30_000 : 1_500));
          endMs = Math.max(endMs, at);
          returned++;
          if (retcode !== 0) failed++;
          rets.push({
            cmd: '_return',
            id,
            jid,
            fun,
            fun_args: arg,
            return: ret,
            retcode,
            success: retcode === 0,
            user,
            _stamp: stampOf(at),
            alter_time: new Date(at).toISOString(),
          });
        }
        const load = { cmd: 'publish', tgt, fun, arg, tgt_type: tgtType, ret: '', jid, user, minions, missing: [] };
        if (metadata) load.metadata = metadata;
        jobs.push({
          jid,
          fun,
          arg,
          tgt,
          tgt_type: tgtType,
          user,
          metadata,
          minions,
          expected: minions.length,
          returned,
          failed,
          start_time: new Date(startMs).toISOString(),
          end_time: returned > 0 ? new Date(endMs).toISOString() : null,
        });
        jids.push({ jid, load });
        seen.push(jid);
        if (seen.length > 50) seen.shift();
      }
      await client.query('BEGIN');
      await client.query(SQL.jobs, [JSON.stringify(jobs)]);
      await client.query(SQL.jids, [JSON.stringify(jids)]);
      if (rets.length > 0) await client.query(SQL.returns, [JSON.stringify(rets)]);
      await client.query('COMMIT');
      returns += rets.length;
      if (opts.log && (i / batch) % 10 === 9) opts.log(`seeded ${i + batch} jobs`);
    }
    await client.query('ANALYZE jobs');
    await client.query('ANALYZE jids');
    await client.query('ANALYZE salt_returns');
  } finally {
    await client.end();
  }
  return { jobs: count, returns, seconds: (Date.now() - started) / 1000 };
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const [url, count, days] = process.argv.slice(2);
  if (!url) {
    process.stderr.write('usage: node bench/seed-jobs.js <DATABASE_URL> [count=100000] [days=30]\n');
    process.exit(2);
  }
  const r = await seedJobs(url, {
    count: count ? Number(count) : undefined,
    days: days ? Number(days) : undefined,
    log: (s) => process.stderr.write(s + '\n'),
  });
  process.stdout.write(JSON.stringify(r) + '\n');
}
