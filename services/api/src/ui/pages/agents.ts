import { html, type Html } from '../html.js';

export interface AgentRow {
  id: string;
  state: 'accepted' | 'pending' | 'rejected' | 'denied';
  started?: string;
  lastProgress?: Date;
  running: string[];
}

const ACTIONS: Record<AgentRow['state'], ('accept' | 'reject' | 'delete')[]> = {
  accepted: ['reject', 'delete'],
  pending: ['accept', 'reject', 'delete'],
  rejected: ['accept', 'delete'],
  denied: ['delete'],
};

export function agentsPage(agents: AgentRow[] | undefined, refusal: string | undefined, chart: Html | undefined): Html {
  return html`<h1>Agents</h1>
    ${chart ?? ''}
    ${
      agents === undefined
        ? html`<p class="notice error" role="alert">${refusal ?? 'The keys cannot be listed.'}</p>`
        : html`<table class="agents">
            <caption>
              Keys and presence
            </caption>
            <thead>
              <tr>
                <th scope="col">id</th>
                <th scope="col">key</th>
                <th scope="col">process started</th>
                <th scope="col">last progress</th>
                <th scope="col">running jobs</th>
                <th scope="col">actions</th>
              </tr>
            </thead>
            <tbody>
              ${agents.map(
                (a) =>
                  html`<tr data-agent="${a.id}">
                    <td>${a.id}</td>
                    <td><span class="badge ${a.state === 'accepted' ? 'ok' : a.state === 'pending' ? 'wait' : 'bad'}">${a.state}</span></td>
                    <td>${a.started ?? ''}</td>
                    <td>${a.lastProgress ? a.lastProgress.toISOString() : ''}</td>
                    <td>${a.running.map((jid) => html`<a href="/ui/jobs/${jid}">${jid}</a> `)}</td>
                    <td class="row-actions">
                      ${ACTIONS[a.state].map(
                        (act) =>
                          html`<form method="post" action="/ui/keys">
                            <input type="hidden" name="match" value="${a.id}" /><input type="hidden" name="action" value="${act}" /><button
                              type="submit"
                            >
                              ${act}
                            </button>
                          </form>`,
                      )}
                    </td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }`;
}
