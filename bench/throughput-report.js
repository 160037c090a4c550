// Writes bench/replay.js's figures: bench/results/throughput.json, a section of docs/benchmarks.md
// and docs/benchmarks-throughput.svg (every throughput beside the ceiling measured in the same run).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const fmt = (n) => n.toLocaleString('en-US');
const pct = (r) => `${Math.round(r * 100)}%`;

/** The throughput figures as bars (events/s), each labelled with its share of the pipeline ceiling. */
function chart(r) {
  const ceiling = r.ceiling.pipeline.events_per_s;
  const bars = [
    ['ceiling: read → parse → COPY', ceiling, '#999'],
    ['projector, live burst', r.projector_live.events_per_s, '#4c78a8'],
    ...(r.backlog ? [['projector, 1M backlog', r.backlog.events_per_s, '#72b7b2']] : []),
    ['replay', r.replay.events_per_s, '#f58518'],
    ['audit verify', r.verify.events_per_s, '#54a24b'],
  ];
  const W = 640;
  const H = 60 + bars.length * 42;
  const left = 200;
  const right = 90;
  const max = Math.max(...bars.map(([, v]) => v));
  const x = (v) => ((W - left - right) * v) / max;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<title>events per second of the projector, replay and audit verify, beside the ceiling measured in the same run</title>`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">${fmt(r.stream_events)} events, events/s (share of the ceiling)</text>`,
    `<line x1="${left + x(ceiling / 2)}" x2="${left + x(ceiling / 2)}" y1="30" y2="${H - 20}" stroke="#c00" stroke-dasharray="4 3"/>`,
    `<text x="${left + x(ceiling / 2) + 4}" y="${H - 8}" fill="#c00">target: 50% of the ceiling</text>`,
  ];
  bars.forEach(([name, v, color], i) => {
    const y = 36 + i * 42;
    parts.push(
      `<text x="${left - 8}" y="${y + 17}" text-anchor="end">${name}</text>`,
      `<rect x="${left}" y="${y}" width="${x(v).toFixed(1)}" height="26" fill="${color}"><title>${name}: ${fmt(v)} events/s</title></rect>`,
      `<text x="${(left + x(v) + 6).toFixed(1)}" y="${y + 17}">${fmt(v)} (${pct(v / ceiling)})</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function markdown(r, machine) {
  const c = r.ceiling;
  const row = (name, rate, ms, extra = '') => `| ${name} | ${fmt(rate)} | ${pct(rate / c.pipeline.events_per_s)} | ${fmt(ms)} | ${extra} |`;
  return [
    '<!-- throughput:begin (written by bench/run.js replay; do not edit by hand) -->',
    '## Throughput against the ceiling',
    '',
    `Measured by \`npm run bench\` (\`node bench/run.js replay\`, bench/replay.js and bench/ceiling.js) on ${machine}; figures in \`bench/results/throughput.json\`.`,
    `${fmt(r.jobs)} jobs, ${fmt(r.stream_events)} signed events in the stream (${r.dead_letters} dead letters).`,
    '',
    '![events per second against the ceiling](benchmarks-throughput.svg)',
    '',
    'The ceiling, measured on the same stream and database in the same run:',
    '',
    '| step | figure |',
    '|---|---|',
    `| ordered-consumer read of the stream | ${fmt(c.read.msgs_per_s)} messages/s (${fmt(c.read.messages)} in ${fmt(c.read.ms)} ms) |`,
    `| COPY of the read models' rows into scratch tables, no indexes | ${fmt(c.copy.bare.rows_per_s)} rows/s (${fmt(c.copy.bare.rows)} rows) |`,
    `| the same with the read models' indexes | ${fmt(c.copy.indexed.rows_per_s)} rows/s |`,
    `| **pipeline: read → parse → COPY, no indexes** (the ratios' base) | **${fmt(c.pipeline.events_per_s)} events/s** |`,
    '',
    '| figure | events/s | of the ceiling | ms | |',
    '|---|---|---|---|---|',
    row(
      `projector, live burst (${r.projector_live.publishers} publishers)`,
      r.projector_live.events_per_s,
      r.projector_live.projected_ms,
      `offered ${fmt(r.projector_live.offered_events_per_s)} events/s; publish to row p50 ${fmt(r.projector_live.publish_to_row_ms.p50)} ms, p99 ${fmt(r.projector_live.publish_to_row_ms.p99)} ms`,
    ),
    ...(r.backlog
      ? [
          row(
            `projector draining a backlog of ${fmt(r.backlog.backlog)} events`,
            r.backlog.events_per_s,
            r.backlog.drain_ms,
            `RSS ${r.backlog.rss_mb.before} MB before, p50 ${r.backlog.rss_mb.p50}, max ${r.backlog.rss_mb.max} MB (target < 300)`,
          ),
        ]
      : []),
    row('`jobledger replay --into rebuilt`', r.replay.events_per_s, r.replay.ms, 'target: 144,689 events ≤ 4 s'),
    row('`jobledger audit verify`', r.verify.events_per_s, r.verify.ms, 'target: 144,689 events ≤ 6 s'),
    ...(r.explain ? explainRows(r.explain) : []),
    '<!-- throughput:end -->',
  ].join('\n');
}

/** PostgreSQL's share of a replay (bench/explain.js): auto_explain's plans summed by table. */
function explainRows(e) {
  return [
    '',
    `PostgreSQL's side of a replay (one more \`replay\` with auto_explain, ANALYZE; its plans summed by the table written; ${fmt(e.total_ms)} ms in all over ${fmt(e.plans ?? 0)} statements, the durations the server logged, EXPLAIN ANALYZE's own timing included${e.unreadable_plans ? `; ${e.unreadable_plans} plans unreadable` : ''}). "unpacking" is the plan's Function Scan over the batch's JSON (\`jsonb_array_elements\`); the rest of a statement is inserting the rows and maintaining the indexes (the GIN indexes are built once at the end, not counted here).`,
    '',
    '| table | statements | rows | ms | of which unpacking | triggers |',
    '|---|---|---|---|---|---|',
    ...e.tables.map(
      (t) => `| ${t.table} | ${fmt(t.statements)} | ${fmt(t.rows)} | ${fmt(t.ms)} | ${fmt(t.unpack_ms)} | ${fmt(t.triggers_ms)} |`,
    ),
  ];
}

export function writeThroughput(root, r) {
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
  fs.writeFileSync(
    path.join(root, 'bench/results/throughput.json'),
    JSON.stringify({ date: new Date().toISOString(), machine, ...r }, null, 2) + '\n',
  );
  fs.writeFileSync(path.join(root, 'docs/benchmarks-throughput.svg'), chart(r));
  const doc = path.join(root, 'docs/benchmarks.md');
  const section = markdown(r, machine);
  const old = fs.existsSync(doc) ? fs.readFileSync(doc, 'utf8') : '# Benchmarks\n\nWritten by `npm run bench`.\n';
  const marked = /<!-- throughput:begin[\s\S]*?<!-- throughput:end -->/;
  fs.writeFileSync(doc, marked.test(old) ? old.replace(marked, section) : `${old.trimEnd()}\n\n${section}\n`);
}
