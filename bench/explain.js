// PostgreSQL's side of a replay, statement by statement: bench/replay.js runs one more
// `jobledger replay` with auto_explain (ANALYZE, JSON plans in the server's log) switched on for
// the ledger's database role, then sums the plans by the table each statement writes: how long
// PostgreSQL spent, and how much of it unpacking the batch's JSON (`jsonb_array_elements`, the
// plan's Function Scan) rather than inserting rows and maintaining indexes. The replay's own time
// is not a figure here (EXPLAIN ANALYZE's timing slows it); the settings are removed after.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import pg from 'pg';

const SETTINGS = {
  session_preload_libraries: 'auto_explain',
  'auto_explain.log_min_duration': '0',
  'auto_explain.log_analyze': 'on',
  'auto_explain.log_timing': 'on',
  'auto_explain.log_triggers': 'on',
  'auto_explain.log_format': 'json',
};

/**
 * The plans in a PostgreSQL log: each `duration: <ms> ms  plan:` line and the JSON object after
 * it (string-aware brace matching), with the duration the server logged for the statement.
 */
export function plansIn(log) {
  const plans = [];
  let unreadable = 0;
  const mark = /duration: ([\d.]+) ms\s+plan:/g;
  for (let m = mark.exec(log); m !== null; m = mark.exec(log)) {
    const start = log.indexOf('{', m.index);
    if (start < 0) break;
    let depth = 0;
    let inString = false;
    let end = -1;
    for (let i = start; i < log.length; i++) {
      const ch = log[i];
      if (inString) {
        if (ch === '\\') i++;
        else if (ch === '"') inString = false;
      } else if (ch === '"') inString = true;
      else if (ch === '{') depth++;
      else if (ch === '}' && --depth === 0) {
        end = i;
        break;
      }
    }
    if (end < 0) {
      unreadable++;
      break;
    }
    try {
      plans.push({ ms: Number(m[1]), ...JSON.parse(log.slice(start, end + 1)) });
    } catch {
      unreadable++;
    }
    mark.lastIndex = end + 1;
  }
  return { plans, unreadable };
}

function functionScanMs(node) {
  const own = node['Node Type'] === 'Function Scan' ? node['Actual Total Time'] * (node['Actual Loops'] ?? 1) : 0;
  return own + (node.Plans ?? []).reduce((sum, child) => sum + functionScanMs(child), 0);
}

/** The plans summed by the table each statement writes (`other` for the rest). */
export function byTable(plans) {
  const tables = new Map();
  for (const p of plans) {
    const text = p['Query Text'] ?? '';
    const table = /^\s*INSERT INTO\s+("?[\w.]+"?)/i.exec(text)?.[1]?.replaceAll('"', '') ?? 'other';
    const t = tables.get(table) ?? { table, statements: 0, ms: 0, unpack_ms: 0, triggers_ms: 0, rows: 0 };
    t.statements++;
    t.ms += p.ms;
    t.unpack_ms += functionScanMs(p.Plan);
    t.triggers_ms += (p.Triggers ?? []).reduce((sum, tr) => sum + tr.Time, 0);
    t.rows += p.Plan.Plans?.[0]?.['Actual Rows'] ?? p.Plan['Actual Rows'] ?? 0;
    tables.set(table, t);
  }
  const round = (n) => Math.round(n * 10) / 10;
  return [...tables.values()]
    .map((t) => ({ ...t, ms: round(t.ms), unpack_ms: round(t.unpack_ms), triggers_ms: round(t.triggers_ms) }))
    .sort((a, b) => b.ms - a.ms);
}

/**
 * Runs `replay --into <schema>` with auto_explain on; the plans summed by table. The settings
 * reach every session of the role that starts meanwhile (the bench's live services are idle).
 */
export async function explainReplay({ home, env, bin, databaseUrl, schema = 'explained' }) {
  const url = new URL(databaseUrl);
  const role = decodeURIComponent(url.username);
  const password = fs.readFileSync(path.join(home, 'pg', 'pg-password'), 'utf8').trim();
  const log = path.join(home, 'logs', 'postgres.log');
  const offset = fs.statSync(log).size;
  const su = new pg.Client({ host: url.hostname, port: Number(url.port), database: url.pathname.slice(1), user: 'postgres', password });
  await su.connect();
  const quoted = `"${role.replaceAll('"', '""')}"`;
  const undo = [...Object.keys(SETTINGS).map((name) => `ALTER ROLE ${quoted} RESET ${name}`), `DROP SCHEMA IF EXISTS "${schema}" CASCADE`];
  try {
    for (const [name, value] of Object.entries(SETTINGS)) await su.query(`ALTER ROLE ${quoted} SET ${name} = '${value}'`);
    const r = spawnSync(process.execPath, [bin, 'replay', '--into', schema], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`replay --into ${schema} (explained) exited ${r.status}: ${r.stderr}`);
  } finally {
    const failed = [];
    for (const sql of undo) await su.query(sql).catch((err) => failed.push(`${sql}: ${err.message}`));
    await su.end();
    if (failed.length > 0) throw new Error(`could not undo the explain settings:\n${failed.join('\n')}`);
  }
  const { plans, unreadable } = plansIn(fs.readFileSync(log).subarray(offset).toString('utf8'));
  const tables = byTable(plans);
  const total = tables.reduce((sum, t) => sum + t.ms, 0);
  return { total_ms: Math.round(total), plans: plans.length, unreadable_plans: unreadable, tables };
}
