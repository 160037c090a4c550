import { html, type Html } from './html.js';

export type Section = 'jobs' | 'run' | 'agents' | 'login';

export interface PageOptions {
  title: string;
  /** The logged-in user (none on the login page). */
  user?: string;
  section: Section;
  body: Html;
  /** A message shown above the page (a refusal, a result). */
  notice?: { kind: 'error' | 'info'; text: string };
}

const NAV: [Section, string, string][] = [
  ['jobs', '/ui/jobs', 'Jobs'],
  ['run', '/ui/run', 'Run'],
  ['agents', '/ui/agents', 'Agents'],
];

/** The page shell: header, navigation, theme switch, the notice, the body. */
export function page(o: PageOptions): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${o.title} · jobledger</title>
        <link rel="stylesheet" href="/ui/assets/app.css" />
        <script src="/ui/assets/theme.js"></script>
        <script src="/ui/assets/app.js" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <a class="brand" href="/ui/jobs">jobledger</a>
          ${
            o.user !== undefined
              ? html`<nav aria-label="Main">
                    ${NAV.map(
                      ([s, href, label]) => html`<a href="${href}" ${s === o.section ? html` aria-current="page"` : ''}>${label}</a>`,
                    )}<a href="/openapi">API</a>
                  </nav>
                  <form class="who" method="post" action="/ui/logout"><span>${o.user}</span> <button type="submit">Log out</button></form>`
              : ''
          }
          <button type="button" class="theme" data-theme-toggle aria-label="Switch between dark and light theme">◐</button>
        </header>
        <main id="main">
          ${o.notice ? html`<p class="notice ${o.notice.kind}" role="${o.notice.kind === 'error' ? 'alert' : 'status'}">${o.notice.text}</p>` : ''}
          ${o.body}
        </main>
      </body>
    </html> `.value;
}
