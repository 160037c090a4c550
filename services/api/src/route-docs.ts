import type { FastifySchema } from 'fastify';

/**
 * What `/openapi.json` says of each route: summaries, parameters and reply shapes, in salt-api's
 * words where it has them. Documentation only (see `openapi.ts`).
 */

const auth: Record<string, string[]>[] = [{ token: [] }, { session: [] }];
const str = { type: 'string' } as const;
const obj = { type: 'object', additionalProperties: true } as const;
/** A lowstate body (documentation: the API reads it as salt-api does). */
const lowstateBody = {
  description:
    'One lowstate chunk or a list of them. `client` is one of the enabled clients; `tgt`, `tgt_type`, `fun`, `arg`, `kwarg`, ' +
    '`timeout`, `full_return`, and for `runner`/`wheel` keyword arguments as top-level keys (e.g. `match`).',
  oneOf: [
    { type: 'array', items: obj },
    {
      type: 'object',
      properties: { client: str, tgt: str, tgt_type: str, fun: str, arg: { type: 'array', items: {} }, kwarg: obj },
      additionalProperties: true,
    },
  ],
};
const consumes = ['application/json', 'application/x-www-form-urlencoded', 'application/x-yaml', 'text/plain'];
const returns = (description: string) => ({
  200: { description, type: 'object', properties: { return: { type: 'array', items: {} } } },
  401: { description: 'no session, or the user’s external_auth rules refuse the call (an HTML page with Salt’s message)', ...str },
});

export const routeDocs = {
  index: { tags: ['lowstate'], summary: 'Welcome and the clients', response: { 200: obj } },
  run: {
    tags: ['lowstate'],
    summary: 'Run lowstate chunks with the session’s token',
    description: 'Each chunk in order; one failing chunk fails the request. A denied call is recorded in the ledger.',
    security: auth,
    body: lowstateBody,
    consumes,
    response: returns(
      'one element per chunk: {id: return} for local, {jid, minions} for local_async, the runner’s return, the wheel event',
    ),
  },
  runNoSession: {
    tags: ['lowstate'],
    summary: 'Run lowstate chunks without a session',
    description: 'Every chunk carries `token`, or `username`, `password` and `eauth`.',
    body: lowstateBody,
    consumes,
    response: returns('one element per chunk'),
  },
  loginGet: { tags: ['auth'], summary: 'Login page hint', response: { 200: obj } },
  login: {
    tags: ['auth'],
    summary: 'Log in by external_auth',
    description: 'Form or JSON `username`, `password`, `eauth` (`file`). 20 attempts a minute per address.',
    response: {
      200: {
        description: 'the session',
        type: 'object',
        properties: {
          return: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                token: { type: 'string', description: '40 hex characters; also in X-Auth-Token and the session_id cookie' },
                start: { type: 'number' },
                expire: { type: 'number' },
                user: str,
                eauth: str,
                perms: { description: 'the user’s rules: a list, or {} when none' },
              },
            },
          },
        },
      },
      401: { description: 'Could not authenticate using provided credentials', ...str },
    },
  },
  logout: { tags: ['auth'], summary: 'End the session', security: auth, response: { 200: obj } },
  jobs: {
    tags: ['jobs'],
    summary: 'The job history (runner jobs.list_jobs), one page',
    security: auth,
    querystring: {
      type: 'object',
      properties: {
        search_function: { type: 'string', description: 'glob(s) on the function' },
        search_target: { type: 'string', description: 'glob(s) on the target' },
        search_metadata: { type: 'string', description: 'JSON: metadata the job must have' },
        start_time: { type: 'string', description: 'jobs started at or after (a date Salt reads)' },
        end_time: { type: 'string', description: 'jobs started at or before' },
        user: { type: 'string', description: 'jobledger: glob(s) on the user who published' },
        status: { type: 'string', enum: ['running', 'failed', 'succeeded', 'no-return'], description: 'jobledger' },
        after: { type: 'string', description: 'jobledger: keyset paging, the page of jobs older than this jid' },
        limit: { type: 'integer', description: 'page size (1000)' },
      },
    },
    response: returns('[{jid: {Function, Arguments, Target, Target-type, User, StartTime}}], oldest first'),
  },
  job: {
    tags: ['jobs'],
    summary: 'One job: Salt’s info block and each agent’s return',
    security: auth,
    params: { type: 'object', properties: { jid: { type: 'string', description: '20 digits' } } },
    response: { 200: { type: 'object', properties: { info: { type: 'array', items: obj }, return: { type: 'array', items: obj } } } },
  },
  minions: {
    tags: ['minions'],
    summary: 'grains.items of every agent, or of one',
    security: auth,
    params: { type: 'object', properties: { mid: str } },
    response: returns('[{id: grains}]'),
  },
  minionsPost: {
    tags: ['minions'],
    summary: 'Start a job (local_async)',
    security: auth,
    body: lowstateBody,
    consumes,
    response: { 202: { description: '{return: [{jid, minions}], _links: {jobs: [{href}]}}', ...obj } },
  },
  keys: {
    tags: ['minions'],
    summary: 'Agent keys by state (wheel key.list_all), or one key’s fingerprint (key.finger)',
    security: auth,
    params: { type: 'object', properties: { mid: str } },
    response: { 200: { description: '{return: {local, minions, minions_pre, minions_rejected, minions_denied}}', ...obj } },
  },
  events: {
    tags: ['events'],
    summary: 'Server-Sent Events: the ledger’s events the user may see',
    description:
      'Each event: `id: <stream sequence>`, `tag: <Salt tag>`, `data: {"tag", "data"}`. Reconnect with `Last-Event-ID` to resume ' +
      'exactly after that event. `retry: 400` first; a `: keep-alive` comment every 15 s.',
    security: [...auth, { queryToken: [] }],
    response: { 200: { description: 'text/event-stream', ...str } },
  },
} satisfies Record<string, FastifySchema & Record<string, unknown>>;
