import { html, query, type Html } from '../html.js';

/** A row of `jobs.list_jobs` with `show_counts`. */
export interface JobRow {
  Function: string;
  Arguments: unknown[];
  Target: unknown;
  'Target-type': string;
  User: string;
  StartTime: string;
  Expected?: number;
  Returned?: number;
  Failed?: number;
}

export interface JobsFilters {
  fun?: string;
  tgt?: string;
  user?: string;
  status?: string;
  internal?: string;
  after?: string;
}

export const PAGE_SIZE = 50;

const STATUSES: [string, string][] = [
  ['', 'any'],
  ['running', 'running'],
  ['failed', 'failed'],
  ['succeeded', 'succeeded'],
  ['no-return', 'did not return'],
];

export const targetText = (t: unknown) => (Array.isArray(t) ? t.join(',') : String(t));

/** A job's state from its counters, as `status=` reads it (running and silent are told apart by the filter only). */
function state(r: JobRow): { cls: string; text: string } {
  if ((r.Failed ?? 0) > 0) return { cls: 'bad', text: `failed on ${r.Failed}` };
  if ((r.Returned ?? 0) >= (r.Expected ?? 0)) return { cls: 'ok', text: 'succeeded' };
  return { cls: 'wait', text: 'waiting' };
}

/** The table body: newest first. Also served alone (`?fragment=rows`) for the live refresh. */
export function jobRows(jobs: [string, JobRow][]): Html {
  if (jobs.length === 0)
    return html`<tr>
      <td colspan="7" class="empty">No jobs match.</td>
    </tr>`;
  return html`${jobs.map(([jid, r]) => {
    const s = state(r);
    return html`<tr data-jid="${jid}">
      <td><a href="/ui/jobs/${jid}">${jid}</a></td>
      <td><code>${r.Function}</code></td>
      <td>${targetText(r.Target)}${r['Target-type'] !== 'glob' ? html` <small>(${r['Target-type']})</small>` : ''}</td>
      <td>${r.User}</td>
      <td>${r.StartTime}</td>
      <td>${r.Returned ?? 0}/${r.Expected ?? 0}</td>
      <td><span class="badge ${s.cls}">${s.text}</span></td>
    </tr>`;
  })}`;
}

/** Chunks of the list for the chart: jobs and failed jobs per hour over the last 24 hours. */
export function jobsChart(jobs: [string, JobRow][], now: Date): Html {
  const hours = 24;
  const start = Math.floor(now.getTime() / 3_600_000) - hours + 1;
  const total = new Array<number>(hours).fill(0);
  const failed = new Array<number>(hours).fill(0);
  for (const [jid, r] of jobs) {
    const t = Date.UTC(+jid.slice(0, 4), +jid.slice(4, 6) - 1, +jid.slice(6, 8), +jid.slice(8, 10));
    const i = Math.floor(t / 3_600_000) - start;
    if (i < 0 || i >= hours) continue;
    total[i]!++;
    if ((r.Failed ?? 0) > 0) failed[i]!++;
  }
  const max = Math.max(1, ...total);
  const w = 12;
  const h = 60;
  const bars = total.map((n, i) => {
    const th = Math.round((n / max) * h);
    const fh = Math.round((failed[i]! / max) * h);
    const hour = new Date((start + i) * 3_600_000).toISOString().slice(11, 13);
    return html`<g
      ><title>${hour}:00 UTC: ${n} jobs, ${failed[i]} failed</title
      ><rect class="all" x="${i * w}" y="${h - th}" width="${w - 2}" height="${th}"></rect
      ><rect class="failed" x="${i * w}" y="${h - fh}" width="${w - 2}" height="${fh}"></rect
    ></g>`;
  });
  const sum = total.reduce((a, b) => a + b, 0);
  const sumFailed = failed.reduce((a, b) => a + b, 0);
  return html`<figure class="chart">
    <svg viewBox="0 0 ${hours * w} ${h}" role="img" aria-label="Jobs per hour over the last 24 hours: ${sum} jobs, ${sumFailed} failed">
      ${bars}
    </svg>
    <figcaption>Jobs per hour, last 24 h (of the newest 1000): ${sum} jobs, <span class="failed-key">${sumFailed} failed</span></figcaption>
  </figure>`;
}

export function jobsPage(f: JobsFilters, jobs: [string, JobRow][], more: boolean): Html {
  const base = { fun: f.fun, tgt: f.tgt, user: f.user, internal: f.internal };
  const view = (status: string | undefined, label: string) =>
    html`<a href="/ui/jobs${query({ ...base, status })}" ${(f.status ?? '') === (status ?? '') ? html` aria-current="true"` : ''}
      >${label}</a
    >`;
  const oldest = jobs.at(-1)?.[0];
  return html`<h1>Jobs</h1>
    <nav class="views" aria-label="Views">
      ${view(undefined, 'All')}${view('failed', 'Failed only')}${view('no-return', 'Did not return')}${view('running', 'Running')}
    </nav>
    <form class="filters" method="get" action="/ui/jobs" role="search">
      <label>Function <input name="fun" value="${f.fun ?? ''}" placeholder="test.*" /></label>
      <label>Target <input name="tgt" value="${f.tgt ?? ''}" placeholder="web*" /></label>
      <label>User <input name="user" value="${f.user ?? ''}" placeholder="saltdev" /></label>
      <label
        >Status
        <select name="status">
          ${STATUSES.map(([v, l]) => html`<option value="${v}" ${(f.status ?? '') === v ? html` selected` : ''}>${l}</option>`)}
        </select></label
      >
      <label class="check"
        ><input type="checkbox" name="internal" value="1" ${f.internal === '1' ? html` checked` : ''} /> internal jobs (saltutil.find_job,
        runners)</label
      >
      <button type="submit">Filter</button>
    </form>
    <table
      class="jobs"
      ${f.after === undefined ? html` data-live="/ui/jobs${query({ ...base, status: f.status, fragment: 'rows' })}"` : ''}
    >
      <caption>
        ${f.after === undefined ? 'Newest jobs, updated live' : html`Jobs older than ${f.after}`}
      </caption>
      <thead>
        <tr>
          <th scope="col">jid</th>
          <th scope="col">Function</th>
          <th scope="col">Target</th>
          <th scope="col">User</th>
          <th scope="col">Started (UTC)</th>
          <th scope="col">Returned</th>
          <th scope="col">State</th>
        </tr>
      </thead>
      <tbody aria-live="polite">
        ${jobRows(jobs)}
      </tbody>
    </table>
    <nav class="pager" aria-label="Pages">
      ${f.after !== undefined ? html`<a href="/ui/jobs${query({ ...base, status: f.status })}">Newest</a>` : ''}
      ${more && oldest !== undefined ? html`<a rel="next" href="/ui/jobs${query({ ...base, status: f.status, after: oldest })}">Older jobs</a>` : ''}
    </nav>`;
}
