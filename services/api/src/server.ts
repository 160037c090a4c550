import { readFileSync } from 'node:fs';
import Fastify, { type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify';
import cookie from '@fastify/cookie';
import helmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import rateLimit from '@fastify/rate-limit';
import { stringify as toYaml } from 'yaml';
import { eauthRules } from '@jobledger/core';
import type { Logger } from '@jobledger/runtime';
import type { LedgerClient } from '@jobledger/runtime/ledger-client';
import { CLIENTS, type Clients } from './clients.js';
import { fileEauthCheck, fileEauthOptions } from './eauth-file.js';
import { registerEventsRoute } from './events-route.js';
import { registerOpenApi } from './openapi.js';
import { routeDocs } from './route-docs.js';
import { registerUi } from './ui/routes.js';
import { ApiTexts, errorPage, HttpError } from './http-errors.js';
import { lowstateChunks, parseFormBody, parseJsonBody, parseTextBody, parseYamlBody, type Chunk } from './lowstate.js';
import { loginPerms } from './perms.js';
import type { RestConfig } from './rest-config.js';
import type { Session, SessionStore } from './sessions.js';

export interface ApiServerOptions {
  config: RestConfig;
  /** The ledger: the event feed reads it. */
  ledger: LedgerClient;
  /** The directory of master.yaml: relative eauth file names are read from there. */
  configDir: string;
  clients: Clients;
  sessions: SessionStore;
  logger: Logger;
  /** The package version, for the OpenAPI document. */
  version?: string;
}

const COOKIE = 'session_id';
/** Salt's session cookie lifetime (CherryPy's `tools.sessions.timeout`, 10 h). */
const COOKIE_MAX_AGE = 36_000;

/** Salt's negotiation: JSON (also for any type, or no Accept), YAML on request, else 406. */
function format(req: FastifyRequest): 'json' | 'yaml' {
  const accept = req.headers.accept;
  if (accept === undefined || accept.trim() === '') return 'json';
  const types = accept.split(',').map((t) => t.split(';')[0]!.trim().toLowerCase());
  for (const t of types) {
    if (t === 'application/json' || t === '*/*' || t === 'application/*') return 'json';
    if (t === 'application/x-yaml' || t === 'text/yaml') return 'yaml';
  }
  throw new HttpError(406, ApiTexts.notAcceptable(accept));
}

function send(req: FastifyRequest, reply: FastifyReply, body: unknown, status = 200): FastifyReply {
  const fmt = format(req);
  reply.code(status);
  if (fmt === 'yaml') return reply.type('application/x-yaml').send(toYaml(body));
  return reply.type('application/json').send(JSON.stringify(body));
}

/** The token a request carries: a non-empty `X-Auth-Token` beats the session cookie. */
function presentedToken(req: FastifyRequest): string | undefined {
  const header = req.headers['x-auth-token'];
  const h = Array.isArray(header) ? header[0] : header;
  if (h !== undefined && h !== '') return h;
  return req.cookies[COOKIE];
}

export async function buildApiServer(opts: ApiServerOptions) {
  const { config, clients, sessions, logger } = opts;
  const httpLogger: FastifyBaseLogger = logger.child({ component: 'http' });
  const app = Fastify({
    loggerInstance: httpLogger,
    // Request lines are logged below without their query (a token may be in it).
    disableRequestLogging: true,
    bodyLimit: 1024 * 1024,
    ...(config.tls ? { https: { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) } } : {}),
  });

  await app.register(helmet, {
    contentSecurityPolicy: { directives: { defaultSrc: ["'self'"] } },
    // Same-origin requests keep their Origin (under no-referrer a browser sends `Origin: null`,
    // which the UI's form posts refuse); nothing goes to other sites.
    referrerPolicy: { policy: 'same-origin' },
  });
  await app.register(cookie);
  await app.register(rateLimit, { max: config.rateLimit, timeWindow: '1 minute' });
  await registerOpenApi(app, { version: opts.version ?? '0.0.0' });

  // Bodies: salt-api's media types, each read as text and parsed as Salt does.
  app.removeAllContentTypeParsers();
  const text = (parse: (s: string) => unknown) => (_req: FastifyRequest, body: string, done: (err: Error | null, v?: unknown) => void) => {
    try {
      done(null, parse(body));
    } catch (err) {
      done(err as Error);
    }
  };
  app.addContentTypeParser('application/json', { parseAs: 'string' }, text(parseJsonBody));
  app.addContentTypeParser(['application/x-yaml', 'text/yaml'], { parseAs: 'string' }, text(parseYamlBody));
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, text(parseTextBody));
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, text(parseFormBody));
  app.addContentTypeParser('*', (_req, _payload, done) => done(new HttpError(406, ApiTexts.contentType)));

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    if (err instanceof HttpError || (err.statusCode !== undefined && err.statusCode < 500)) {
      const status = err instanceof HttpError ? err.status : err.statusCode!;
      if (status >= 500) req.log.error({ err, status }, 'request failed');
      return reply.code(status).type('text/html;charset=utf-8').send(errorPage(status, err.message));
    }
    req.log.error({ err }, 'unexpected error');
    try {
      return send(req, reply, { status: 500, return: ApiTexts.unexpected }, 500);
    } catch {
      return reply
        .code(500)
        .type('application/json')
        .send(JSON.stringify({ status: 500, return: ApiTexts.unexpected }));
    }
  });
  app.setNotFoundHandler((_req, reply) =>
    reply.code(404).type('text/html;charset=utf-8').send(errorPage(404, 'Nothing matches the given URI')),
  );

  // The server's time for the request, for clients and `npm run bench` (W3C Server-Timing).
  // Not on the routes that check passwords: their time would tell which users exist.
  const checksPassword = (url: string) => /^\/(login|run|ui\/login)(\?|$)/.test(url);
  app.addHook('onSend', (req, reply, payload, done) => {
    if (!checksPassword(req.url)) void reply.header('Server-Timing', `app;dur=${reply.elapsedTime.toFixed(1)}`);
    done(null, payload);
  });

  app.addHook('onResponse', (req, reply, done) => {
    req.log.info(
      { method: req.method, path: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request',
    );
    done();
  });

  const requireSession = (req: FastifyRequest): { session: Session; token: string } => {
    const token = presentedToken(req);
    const session = sessions.get(token);
    if (session === undefined || token === undefined) throw new HttpError(401);
    return { session, token };
  };

  const login = async (chunk: Chunk): Promise<Session & { token: string }> => {
    const { username, password, eauth } = chunk;
    if (typeof username !== 'string' || typeof password !== 'string' || typeof eauth !== 'string')
      throw new HttpError(401, ApiTexts.loginFailed);
    const backend = config.externalAuth[eauth];
    // `file` is the backend jobledger has; any other named in the request cannot log in.
    if (backend === undefined || eauth !== 'file') throw new HttpError(401, ApiTexts.loginFailed);
    let ok = false;
    try {
      ok = await fileEauthCheck(fileEauthOptions(backend.options, opts.configDir), username, password);
    } catch (err) {
      logger.error({ err, eauth }, 'eauth backend not usable');
    }
    if (!ok) {
      logger.warn({ eauth, user: username.slice(0, 64) }, 'login refused');
      throw new HttpError(401, ApiTexts.loginFailed);
    }
    const { token, session } = sessions.create(username, eauth);
    return { ...session, token };
  };

  app.get('/', { schema: routeDocs.index }, (req, reply) => send(req, reply, { return: 'Welcome', clients: [...CLIENTS] }));

  app.get('/login', { schema: routeDocs.loginGet }, (req, reply) => {
    void reply.header('WWW-Authenticate', 'Session');
    return send(req, reply, { status: null, return: 'Please log in' });
  });

  const setSessionCookie = (reply: FastifyReply, token: string) =>
    reply.setCookie(COOKIE, token, {
      path: '/',
      maxAge: COOKIE_MAX_AGE,
      httpOnly: true,
      sameSite: 'strict',
      secure: config.tls !== undefined,
    });

  app.post('/login', { schema: routeDocs.login, config: { rateLimit: { max: 20, timeWindow: '1 minute' } } }, async (req, reply) => {
    const chunk = lowstateChunks(req.body ?? {})[0] ?? {};
    const s = await login(chunk);
    void reply.header('X-Auth-Token', s.token);
    void setSessionCookie(reply, s.token);
    const perms = loginPerms(config.externalAuth[s.eauth], s.user);
    return send(req, reply, { return: [{ token: s.token, expire: s.expire, start: s.start, user: s.user, eauth: s.eauth, perms }] });
  });

  app.post('/logout', { schema: routeDocs.logout }, (req, reply) => {
    const { token } = requireSession(req);
    sessions.delete(token);
    void reply.clearCookie(COOKIE, { path: '/' });
    return send(req, reply, { return: 'Your token has been cleared' });
  });

  const runChunks = async (chunks: Chunk[], sessionOf: (chunk: Chunk) => Promise<Session>): Promise<unknown[]> => {
    const out: unknown[] = [];
    // In order, as salt-api: one failing chunk fails the request (earlier ones have run).
    for (const chunk of chunks) out.push(await clients.run(chunk, await sessionOf(chunk)));
    return out;
  };

  app.post('/', { schema: routeDocs.run }, async (req, reply) => {
    const { session } = requireSession(req);
    const chunks = lowstateChunks(req.body);
    return send(req, reply, { return: await runChunks(chunks, () => Promise.resolve(session)) });
  });

  // Without a session: each chunk carries a token, or username, password and eauth.
  app.post('/run', { schema: routeDocs.runNoSession, config: { rateLimit: { max: 60, timeWindow: '1 minute' } } }, async (req, reply) => {
    const chunks = lowstateChunks(req.body);
    const result = await runChunks(chunks, async (chunk) => {
      if (typeof chunk.token === 'string') {
        const s = sessions.get(chunk.token);
        if (s === undefined) throw new HttpError(401, /^[0-9a-f]+$/i.test(chunk.token) ? undefined : ApiTexts.invalidToken);
        return s;
      }
      if (chunk.username === undefined && chunk.password === undefined) throw new HttpError(401, ApiTexts.noCredentials);
      const s = await login(chunk);
      sessions.delete(s.token); // a one-call login: nothing to reuse
      return s;
    });
    return send(req, reply, { return: result });
  });

  app.get<{ Querystring: Record<string, string> }>('/jobs', { schema: routeDocs.jobs }, async (req, reply) => {
    const { session } = requireSession(req);
    const kwargs: Record<string, unknown> = {};
    // jobs.list_jobs's filters; `user` is its search_user (jobledger's, as status and after).
    for (const [k, v] of Object.entries(req.query)) if (k !== 'timeout' && k !== 'token') kwargs[k === 'user' ? 'search_user' : k] = v;
    const ret = await clients.runner({ client: 'runner', fun: 'jobs.list_jobs', kwarg: kwargs }, session);
    return send(req, reply, { return: [ret] });
  });

  app.get<{ Params: { jid: string } }>('/jobs/:jid', { schema: routeDocs.job }, async (req, reply) => {
    const { session } = requireSession(req);
    const info = await clients.runner({ client: 'runner', fun: 'jobs.list_job', arg: [req.params.jid] }, session);
    const result = (info as { Result?: Record<string, { return?: unknown }> } | null)?.Result ?? {};
    const ret: Record<string, unknown> = {};
    for (const [id, r] of Object.entries(result)) ret[id] = r?.return;
    return send(req, reply, { info: [info], return: [ret] });
  });

  const minions = async (req: FastifyRequest<{ Params: { mid?: string } }>, reply: FastifyReply) => {
    const { session } = requireSession(req);
    const ret = await clients.run({ client: 'local', tgt: req.params.mid ?? '*', fun: 'grains.items' }, session);
    return send(req, reply, { return: [ret] });
  };
  app.get('/minions', { schema: routeDocs.minions }, minions);
  app.get('/minions/:mid', { schema: routeDocs.minions }, minions);

  app.post('/minions', { schema: routeDocs.minionsPost }, async (req, reply) => {
    const { session } = requireSession(req);
    const chunks = lowstateChunks(req.body).map((c) => ({ ...c, client: 'local_async' }));
    const ret = (await runChunks(chunks, () => Promise.resolve(session))) as ({ jid?: string } | undefined)[];
    const jobs = ret.filter((r) => r?.jid !== undefined).map((r) => ({ href: `/jobs/${r!.jid}` }));
    return send(req, reply, { return: ret, _links: { jobs } }, 202);
  });

  // salt-api's /keys: the wheel's key.list_all and key.finger, the return unwrapped from the event.
  const keys = async (req: FastifyRequest<{ Params: { mid?: string } }>, reply: FastifyReply) => {
    const session = sessions.get(presentedToken(req));
    if (session === undefined) throw new HttpError(401, ApiTexts.noCredentials);
    const mid = req.params.mid;
    const chunk = mid === undefined ? { client: 'wheel', fun: 'key.list_all' } : { client: 'wheel', fun: 'key.finger', match: mid };
    const ret = (await clients.run(chunk, session)) as { data: { return: unknown } };
    return send(req, reply, { return: ret.data.return });
  };
  app.get('/keys', { schema: routeDocs.keys }, keys);
  app.get('/keys/:mid', { schema: routeDocs.keys }, keys);

  registerEventsRoute(app, {
    ledger: opts.ledger,
    sessions,
    presentedToken,
    rulesOf: (s) => {
      const backend = config.externalAuth[s.eauth];
      return backend === undefined ? [] : eauthRules(backend, s.user, [], config.permissiveAcl);
    },
  });

  await registerUi(app, {
    clients,
    ledger: opts.ledger,
    sessionOf: (req) => sessions.get(presentedToken(req)),
    login: async (chunk, reply) => {
      const s = await login(chunk);
      void setSessionCookie(reply, s.token);
      return s;
    },
    logout: (req, reply) => {
      const token = presentedToken(req);
      if (token !== undefined) sessions.delete(token);
      void reply.clearCookie(COOKIE, { path: '/' });
    },
  });

  if (config.app !== undefined) {
    const appFile = config.app;
    app.get(`${config.appPath}*`, (_req, reply) => reply.type('text/html;charset=utf-8').send(readFileSync(appFile)));
  }
  if (config.static !== undefined) {
    await app.register(fastifyStatic, { root: config.static, prefix: `${config.staticPath}/`, index: false, dotfiles: 'deny' });
  }
  return app;
}
