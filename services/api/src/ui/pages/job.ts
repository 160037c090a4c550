import { renderReturn } from '@jobledger/core/output';
import { html, type Html } from '../html.js';
import { targetText } from './jobs.js';

export interface JobInfo {
  jid: string;
  Function?: string;
  Arguments?: unknown[];
  Target?: unknown;
  'Target-type'?: string;
  User?: string;
  StartTime?: string;
  EndTime?: string;
  Minions?: string[];
  Result?: Record<string, { return?: unknown; retcode?: number; success?: boolean; out?: string }>;
}

export interface TrailEntry {
  seq: number;
  time: Date;
  type: string;
  agent?: string;
}

export const OUTPUTTERS = ['nested', 'json', 'yaml'] as const;
export type UiOutputter = (typeof OUTPUTTERS)[number];

/** The agents a rerun or a signal goes to. */
export function jobAgents(info: JobInfo): { failed: string[]; silent: string[] } {
  const result = info.Result ?? {};
  const failed = Object.entries(result)
    .filter(([, r]) => r.success === false || (r.retcode ?? 0) !== 0)
    .map(([id]) => id)
    .sort();
  const silent = (info.Minions ?? []).filter((id) => !(id in result)).sort();
  return { failed, silent };
}

function durationMs(trail: TrailEntry[], id: string): number | undefined {
  const start = trail.find((t) => t.type === 'job.published')?.time;
  const end = trail.find((t) => t.type === 'job.returned' && t.agent === id)?.time;
  return start && end ? end.getTime() - start.getTime() : undefined;
}

export function jobPage(info: JobInfo, trail: TrailEntry[], out: UiOutputter, canAct: boolean): Html {
  const { failed, silent } = jobAgents(info);
  const result = info.Result ?? {};
  const ids = Object.keys(result).sort();
  const field = (k: string, v: unknown) =>
    html`<dt>${k}</dt>
      <dd>${v}</dd>`;
  const action = (path: string, name: string, value: string, label: string, disabled: boolean) =>
    html`<form method="post" action="/ui/jobs/${info.jid}/${path}">
      <input type="hidden" name="${name}" value="${value}" /><button type="submit" ${disabled ? html` disabled` : ''}>${label}</button>
    </form>`;
  return html`<h1>Job <code>${info.jid}</code></h1>
    <section aria-labelledby="info-h">
      <h2 id="info-h">Info</h2>
      <dl class="info">
        ${field('Function', html`<code>${info.Function ?? ''}</code>`)}
        ${field('Arguments', html`<code>${JSON.stringify(info.Arguments ?? [])}</code>`)} ${field('Target', targetText(info.Target ?? ''))}
        ${field('Target-type', info['Target-type'] ?? '')} ${field('User', info.User ?? '')} ${field('StartTime', info.StartTime ?? '')}
        ${info.EndTime !== undefined ? field('EndTime', info.EndTime) : ''} ${field('Minions', (info.Minions ?? []).join(', '))}
        ${field('Did not return', silent.length > 0 ? html`<span class="badge wait">${silent.join(', ')}</span>` : 'none')}
      </dl>
    </section>
    ${
      canAct
        ? html`<section class="actions" aria-label="Actions">
            ${action('rerun', 'which', 'failed', `Rerun on failed agents (${failed.length})`, failed.length === 0)}
            ${action('rerun', 'which', 'silent', `Rerun on agents that did not return (${silent.length})`, silent.length === 0)}
            ${action('signal', 'signal', 'term', 'Terminate (term_job)', silent.length === 0)}
            ${action('signal', 'signal', 'kill', 'Kill (kill_job)', silent.length === 0)}
          </section>`
        : ''
    }
    <section aria-labelledby="ret-h">
      <h2 id="ret-h">Returns</h2>
      <nav class="views" aria-label="Outputter">
        ${OUTPUTTERS.map((o) => html`<a href="?out=${o}" ${o === out ? html` aria-current="true"` : ''}>${o}</a>`)}
      </nav>
      ${
        ids.length === 0
          ? html`<p class="empty">No returns yet.</p>`
          : ids.map((id) => {
              const r = result[id]!;
              const retcode = r.retcode ?? 0;
              const ok = r.success !== false && retcode === 0;
              const ms = durationMs(trail, id);
              return html`<article class="ret" data-agent="${id}">
                <h3>
                  ${id}
                  <span class="badge ${ok ? 'ok' : 'bad'}">retcode ${retcode}</span
                  >${ms !== undefined ? html` <small>${ms} ms</small>` : ''}
                </h3>
                <pre>${renderReturn(out, { [id]: r.return }, { color: false, retcode })}</pre>
              </article>`;
            })
      }
    </section>
    <section aria-labelledby="trail-h">
      <h2 id="trail-h">Audit trail</h2>
      <table class="trail">
        <caption>
          The job's events in the ledger stream
        </caption>
        <thead>
          <tr>
            <th scope="col">seq</th>
            <th scope="col">stored (UTC)</th>
            <th scope="col">event</th>
            <th scope="col">agent</th>
          </tr>
        </thead>
        <tbody>
          ${trail.map(
            (t) =>
              html`<tr>
                <td>${t.seq}</td>
                <td>${t.time.toISOString()}</td>
                <td>${t.type}</td>
                <td>${t.agent ?? ''}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    </section>`;
}
