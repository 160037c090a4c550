import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import { parse as shellWords } from 'shell-quote';
import { AGENTS_BUCKET, PROGRESS_BUCKET, encodeAgentId, type AgentPresence } from '@jobledger/core';
import type { LedgerClient } from '@jobledger/runtime/ledger-client';
import { parseFunctionArgs } from '@jobledger/runtime/salt-args';
import { Kvm } from '@nats-io/kv';
import type { Clients } from '../clients.js';
import { HttpError } from '../http-errors.js';
import type { Chunk } from '../lowstate.js';
import type { Session } from '../sessions.js';
import { html, type Html } from './html.js';
import { page, type PageOptions } from './layout.js';
import { agentsPage, type AgentRow } from './pages/agents.js';
import { jobAgents, jobPage, OUTPUTTERS, type JobInfo, type TrailEntry, type UiOutputter } from './pages/job.js';
import { jobRows, jobsChart, jobsPage, PAGE_SIZE, type JobRow, type JobsFilters } from './pages/jobs.js';
import { loginPage } from './pages/login.js';
import { runPage, type RunForm } from './pages/run.js';

/**
 * The web UI at `/ui/`: server-rendered pages over the same clients as the API, so every page
 * and action is held to the user's `external_auth` rules and every refusal is recorded as the
 * API's are. The session is the API's (the `session_id` cookie: HttpOnly, SameSite=Strict);
 * a form post must also come from this origin. `ui/assets/` holds the stylesheet and the small
 * script (theme switch, live job list through `/events`); nothing is loaded from elsewhere.
 */

export interface UiOptions {
  clients: Clients;
  ledger: LedgerClient;
  sessionOf: (req: FastifyRequest) => Session | undefined;
  /** Logs in (the API's login: eauth checked, session made) and sets the session cookie. */
  login: (chunk: Chunk, reply: FastifyReply) => Promise<Session>;
  logout: (req: FastifyRequest, reply: FastifyReply) => void;
}

const ASSETS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../ui/assets');

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);

/** The words of an arguments field as a shell splits them, then read as the CLI reads them. */
export function argsOf(text: string | undefined): { arg: unknown[]; kwarg: Record<string, unknown> } {
  if (text === undefined) return { arg: [], kwarg: {} };
  // Unquoted globs and operators are words here: nothing is expanded or run.
  const words = shellWords(text, (name) => `$${name}`).map((w) => {
    if (typeof w === 'string') return w;
    if ('comment' in w) return `#${w.comment}`;
    return w.op === 'glob' ? w.pattern : w.op;
  });
  return parseFunctionArgs(words);
}

/** Salt's stored arguments back into a call: a trailing `__kwarg__` mapping is the keyword arguments. */
function callArgs(args: unknown[] | undefined): { arg: unknown[]; kwarg: Record<string, unknown> } {
  const arg = [...(args ?? [])];
  const last = arg.at(-1);
  if (typeof last === 'object' && last !== null && (last as Record<string, unknown>).__kwarg__ === true) {
    arg.pop();
    const { __kwarg__: _k, ...kwarg } = last as Record<string, unknown>;
    return { arg, kwarg };
  }
  return { arg, kwarg: {} };
}

export async function registerUi(app: FastifyInstance, o: UiOptions): Promise<void> {
  await app.register(fastifyStatic, { root: ASSETS, prefix: '/ui/assets/', decorateReply: false, index: false, maxAge: 3_600_000 });

  const render = (reply: FastifyReply, opts: PageOptions, status = 200) =>
    reply.code(status).type('text/html;charset=utf-8').header('Cache-Control', 'no-store').send(page(opts));

  /** The session, or a redirect to the login page. */
  const session = (req: FastifyRequest, reply: FastifyReply): Session | undefined => {
    const s = o.sessionOf(req);
    if (s === undefined) void reply.redirect(`/ui/login?next=${encodeURIComponent(req.url)}`, 303);
    return s;
  };

  /** A form post from another origin is refused (the cookie is SameSite=Strict as well). */
  const sameOrigin = (req: FastifyRequest) => {
    const refuse = () => new HttpError(403, 'Cross-site form posts are refused');
    const origin = req.headers.origin;
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') throw refuse();
    if (origin === undefined) return;
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      throw refuse();
    }
    if (origin === 'null' || host !== req.headers.host) throw refuse();
  };

  const body = (req: FastifyRequest): Chunk => (typeof req.body === 'object' && req.body !== null ? (req.body as Chunk) : {});

  /** Runs a call; a refusal becomes the page's notice with its status. */
  const attempt = async <T>(fn: () => Promise<T>): Promise<{ ok: T } | { error: HttpError }> => {
    try {
      return { ok: await fn() };
    } catch (err) {
      if (err instanceof HttpError) return { error: err };
      throw err;
    }
  };

  app.get('/ui', (_req, reply) => reply.redirect('/ui/jobs', 303));
  app.get('/ui/', (_req, reply) => reply.redirect('/ui/jobs', 303));

  app.get<{ Querystring: { next?: string } }>('/ui/login', (req, reply) =>
    render(reply, { title: 'Log in', section: 'login', body: loginPage(safeNext(req.query.next)) }),
  );

  app.post('/ui/login', { config: { rateLimit: { max: 20, timeWindow: '1 minute' } } }, async (req, reply) => {
    sameOrigin(req);
    const b = body(req);
    const next = safeNext(str(b.next));
    const r = await attempt(() => o.login(b, reply));
    if ('error' in r)
      return render(
        reply,
        { title: 'Log in', section: 'login', body: loginPage(next, str(b.username)), notice: { kind: 'error', text: r.error.message } },
        401,
      );
    return reply.redirect(next, 303);
  });

  app.post('/ui/logout', (req, reply) => {
    sameOrigin(req);
    o.logout(req, reply);
    return reply.redirect('/ui/login', 303);
  });

  const listJobs = (s: Session, kwarg: Record<string, unknown>) =>
    o.clients.run({ client: 'runner', fun: 'jobs.list_jobs', kwarg: { show_counts: true, ...kwarg } }, s) as Promise<
      Record<string, JobRow>
    >;

  app.get<{ Querystring: JobsFilters & { fragment?: string } }>('/ui/jobs', async (req, reply) => {
    const s = session(req, reply);
    if (!s) return reply;
    const f: JobsFilters = {};
    for (const k of ['fun', 'tgt', 'user', 'status', 'internal', 'after'] as const) {
      const v = str(req.query[k]);
      if (v !== undefined) f[k] = v;
    }
    const kwarg: Record<string, unknown> = { limit: PAGE_SIZE + 1, hide_internal: f.internal !== '1' };
    if (f.fun) kwarg.search_function = f.fun;
    if (f.tgt) kwarg.search_target = f.tgt;
    if (f.user) kwarg.search_user = f.user;
    if (f.status) kwarg.status = f.status;
    if (f.after) kwarg.after = f.after;
    const r = await attempt(() => listJobs(s, kwarg));
    const all = 'ok' in r ? Object.entries(r.ok).reverse() : [];
    const more = all.length > PAGE_SIZE;
    const jobs = all.slice(0, PAGE_SIZE);
    if (req.query.fragment === 'rows')
      return reply.type('text/html;charset=utf-8').header('Cache-Control', 'no-store').send(jobRows(jobs).value);
    return render(
      reply,
      {
        title: 'Jobs',
        user: s.user,
        section: 'jobs',
        body: jobsPage(f, jobs, more),
        ...('error' in r ? { notice: { kind: 'error' as const, text: r.error.message } } : {}),
      },
      'error' in r ? r.error.status : 200,
    );
  });

  const jobInfo = async (s: Session, jid: string): Promise<JobInfo> => {
    if (!/^\d{20}$/.test(jid)) throw new HttpError(404, `No job ${jid}`);
    const info = (await o.clients.run({ client: 'runner', fun: 'jobs.list_job', arg: [jid] }, s)) as JobInfo | null;
    if (info === null || info.Function === undefined) throw new HttpError(404, `No job ${jid}`);
    return info;
  };

  const showJob = async (reply: FastifyReply, s: Session, jid: string, out: UiOutputter, notice?: PageOptions['notice'], status = 200) => {
    const r = await attempt(() => jobInfo(s, jid));
    if ('error' in r)
      return render(
        reply,
        { title: `Job ${jid}`, user: s.user, section: 'jobs', body: emptyBody(), notice: { kind: 'error', text: r.error.message } },
        r.error.status,
      );
    const trail: TrailEntry[] = (await o.ledger.jobTrail(jid).catch(() => [])).map((t) => ({
      seq: t.seq,
      time: t.time,
      type: t.event?.type ?? 'not an event (quarantined)',
      ...(t.event && 'id' in t.event.data && typeof t.event.data.id === 'string' ? { agent: t.event.data.id } : {}),
    }));
    return render(
      reply,
      { title: `Job ${jid}`, user: s.user, section: 'jobs', body: jobPage(r.ok, trail, out, true), ...(notice ? { notice } : {}) },
      status,
    );
  };

  app.get<{ Params: { jid: string }; Querystring: { out?: string } }>('/ui/jobs/:jid', async (req, reply) => {
    const s = session(req, reply);
    if (!s) return reply;
    const out = (OUTPUTTERS as readonly string[]).includes(req.query.out ?? '') ? (req.query.out as UiOutputter) : 'nested';
    return showJob(reply, s, req.params.jid, out);
  });

  /** Starts a job as the user (local_async) and shows it; a refusal is shown on `back`. */
  const start = async (reply: FastifyReply, s: Session, chunk: Chunk, back: (notice: PageOptions['notice'], status: number) => unknown) => {
    const r = await attempt(() => o.clients.run({ ...chunk, client: 'local_async' }, s) as Promise<{ jid?: string }>);
    if ('error' in r) return back({ kind: 'error', text: r.error.message }, r.error.status);
    if (r.ok.jid === undefined)
      return back({ kind: 'error', text: 'No minions matched the target. No command was sent, no jid was assigned.' }, 200);
    return reply.redirect(`/ui/jobs/${r.ok.jid}`, 303);
  };

  app.post<{ Params: { jid: string } }>('/ui/jobs/:jid/rerun', async (req, reply) => {
    sameOrigin(req);
    const s = session(req, reply);
    if (!s) return reply;
    const jid = req.params.jid;
    const info = await jobInfo(s, jid);
    const { failed, silent } = jobAgents(info);
    const ids = str(body(req).which) === 'silent' ? silent : failed;
    if (ids.length === 0) return showJob(reply, s, jid, 'nested', { kind: 'info', text: 'No agent to rerun on.' });
    const { arg, kwarg } = callArgs(info.Arguments);
    return start(reply, s, { tgt: ids, tgt_type: 'list', fun: info.Function, arg, kwarg }, (notice, status) =>
      showJob(reply, s, jid, 'nested', notice, status),
    );
  });

  app.post<{ Params: { jid: string } }>('/ui/jobs/:jid/signal', async (req, reply) => {
    sameOrigin(req);
    const s = session(req, reply);
    if (!s) return reply;
    const jid = req.params.jid;
    const info = await jobInfo(s, jid);
    const { silent } = jobAgents(info);
    const fun = str(body(req).signal) === 'kill' ? 'saltutil.kill_job' : 'saltutil.term_job';
    if (silent.length === 0)
      return showJob(reply, s, jid, 'nested', { kind: 'info', text: 'Every agent has returned: nothing to signal.' });
    return start(reply, s, { tgt: silent, tgt_type: 'list', fun, arg: [jid] }, (notice, status) =>
      showJob(reply, s, jid, 'nested', notice, status),
    );
  });

  app.get<{ Querystring: RunForm }>('/ui/run', (req, reply) => {
    const s = session(req, reply);
    if (!s) return reply;
    return render(reply, { title: 'Run', user: s.user, section: 'run', body: runPage(req.query) });
  });

  app.post('/ui/run', async (req, reply) => {
    sameOrigin(req);
    const s = session(req, reply);
    if (!s) return reply;
    const b = body(req);
    const form: RunForm = {};
    for (const k of ['tgt', 'tgt_type', 'fun', 'args'] as const) {
      const v = str(b[k]);
      if (v !== undefined) form[k] = v;
    }
    const back = (notice: PageOptions['notice'], status: number) =>
      render(reply, { title: 'Run', user: s.user, section: 'run', body: runPage(form), ...(notice ? { notice } : {}) }, status);
    let args: ReturnType<typeof argsOf>;
    try {
      args = argsOf(form.args);
    } catch (err) {
      return back({ kind: 'error', text: `Arguments: ${(err as Error).message}` }, 400);
    }
    return start(reply, s, { tgt: form.tgt, tgt_type: form.tgt_type ?? 'glob', fun: form.fun, ...args }, back);
  });

  const kvm = new Kvm(o.ledger.nc);

  app.get('/ui/agents', async (req, reply) => {
    const s = session(req, reply);
    if (!s) return reply;
    const keys = await attempt(() => o.clients.run({ client: 'wheel', fun: 'key.list_all' }, s) as Promise<{ data: { return: unknown } }>);
    let agents: AgentRow[] | undefined;
    let chart: Html | undefined;
    if ('ok' in keys) {
      const listing = keys.ok.data.return as Record<string, string[]>;
      const active = await attempt(
        () => o.clients.run({ client: 'runner', fun: 'jobs.active' }, s) as Promise<Record<string, { Running?: Record<string, number>[] }>>,
      );
      const running = new Map<string, string[]>();
      if ('ok' in active)
        for (const [jid, j] of Object.entries(active.ok ?? {}))
          for (const r of j.Running ?? []) for (const id of Object.keys(r)) running.set(id, [...(running.get(id) ?? []), jid]);
      const presence = await kvm.open(AGENTS_BUCKET).catch(() => undefined);
      const progress = await kvm.open(PROGRESS_BUCKET).catch(() => undefined);
      const states: [string, AgentRow['state']][] = [
        ['minions', 'accepted'],
        ['minions_pre', 'pending'],
        ['minions_rejected', 'rejected'],
        ['minions_denied', 'denied'],
      ];
      agents = [];
      for (const [dir, state] of states) {
        for (const id of listing[dir] ?? []) {
          const row: AgentRow = { id, state, running: running.get(id) ?? [] };
          if (state === 'accepted') {
            const p = await presence?.get(encodeAgentId(id)).catch(() => null);
            if (p && p.operation === 'PUT') row.started = p.json<AgentPresence>().startedAt;
            const g = await progress?.get(encodeAgentId(id)).catch(() => null);
            if (g && g.operation === 'PUT') row.lastProgress = g.created;
          }
          agents.push(row);
        }
      }
    }
    const recent = await attempt(() => listJobs(s, { limit: 1000, hide_internal: true }));
    if ('ok' in recent) chart = jobsChart(Object.entries(recent.ok), new Date());
    return render(
      reply,
      {
        title: 'Agents',
        user: s.user,
        section: 'agents',
        body: agentsPage(agents, 'error' in keys ? keys.error.message : undefined, chart),
      },
      'error' in keys ? keys.error.status : 200,
    );
  });

  app.post('/ui/keys', async (req, reply) => {
    sameOrigin(req);
    const s = session(req, reply);
    if (!s) return reply;
    const b = body(req);
    const action = str(b.action);
    const match = str(b.match);
    if (!['accept', 'reject', 'delete'].includes(action ?? '') || match === undefined)
      throw new HttpError(400, 'action: accept, reject or delete; match: an id');
    const r = await attempt(() => o.clients.run({ client: 'wheel', fun: `key.${action}`, match: [exactGlob(match)] }, s));
    if ('error' in r)
      return render(
        reply,
        { title: 'Agents', user: s.user, section: 'agents', body: agentsPage(undefined, r.error.message, undefined) },
        r.error.status,
      );
    return reply.redirect('/ui/agents', 303);
  });
}

const emptyBody = (): Html => html``;

/** Only a path of this UI may be the page after login: printable ASCII, at most 2 KB. */
export function safeNext(next: string | undefined): string {
  if (next === undefined || next.length > 2048 || !/^[\x21-\x7e]*$/.test(next)) return '/ui/jobs';
  return /^\/ui(\/[^/\\?#]*)*(\?[^#]*)?$/.test(next) ? next : '/ui/jobs';
}

/** An id as a glob that matches only itself (the wheel's `match` is a glob, and an id may hold `*`, `?` or `[`). */
export function exactGlob(id: string): string {
  return id.replace(/[*?[]/g, (c) => `[${c}]`);
}
