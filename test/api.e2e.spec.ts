// salt-api's rest_cherrypy contract through the real API service, dispatcher, agents and ledger:
// `up` starts the API because master.yaml has a rest_cherrypy: section; users log in by the
// file eauth (an htpasswd file of bcrypt hashes) and are held to their external_auth rules.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliHome } from './support/cli.js';
import { until } from './support/until.js';

const home = new CliHome('jobledger-api-e2e-');
let base = '';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // What `htpasswd -B` writes: bcrypt, `$2y$`.
  const hash = (pw: string) => bcrypt.hashSync(pw, 4).replace(/^\$2b\$/, '$2y$');
  fs.writeFileSync(path.join(home.root, 'api-users.htpasswd'), `saltdev:${hash('s3cret')}\ntester:${hash('t3st')}\n`);
  fs.writeFileSync(
    path.join(home.root, 'master.yaml'),
    [
      'rest_cherrypy:',
      `  port: ${port}`,
      '  disable_ssl: True',
      'external_auth:',
      '  file:',
      '    ^filename: api-users.htpasswd',
      '    ^filetype: htpasswd',
      '    saltdev:',
      "      - '.*'",
      "      - '@runner'",
      '    tester:',
      "      - 'test.*'",
      '',
    ].join('\n'),
  );
  await home.up(['a', 'b', 'c']);
}, 240_000);

afterAll(async () => {
  await home.downAndRemove();
}, 120_000);

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' };

async function login(username: string, password: string): Promise<string> {
  const r = await fetch(`${base}/login`, { method: 'POST', headers: FORM, body: form({ username, password, eauth: 'file' }) });
  expect(r.status).toBe(200);
  const body = (await r.json()) as { return: { token: string }[] };
  return body.return[0]!.token;
}

describe('salt-api: login', () => {
  it("returns a token, Salt's login reply and the session cookie", async () => {
    const r = await fetch(`${base}/login`, {
      method: 'POST',
      headers: FORM,
      body: form({ username: 'saltdev', password: 's3cret', eauth: 'file' }),
    });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { return: Record<string, unknown>[] };
    const reply = body.return[0]!;
    expect(reply.token).toMatch(/^[0-9a-f]{40}$/);
    expect(r.headers.get('x-auth-token')).toBe(reply.token);
    expect(r.headers.get('set-cookie')).toContain(`session_id=${reply.token as string}`);
    expect(reply).toMatchObject({ user: 'saltdev', eauth: 'file', perms: ['.*', '@runner'] });
    expect((reply.expire as number) - (reply.start as number)).toBeCloseTo(43200, 3);
  });

  it('refuses a wrong password with 401 and salt-api text', async () => {
    const r = await fetch(`${base}/login`, {
      method: 'POST',
      headers: FORM,
      body: form({ username: 'saltdev', password: 'nope', eauth: 'file' }),
    });
    expect(r.status).toBe(401);
    expect(r.headers.get('content-type')).toContain('text/html');
    expect(await r.text()).toContain('<p>Could not authenticate using provided credentials</p>');
  });

  it('refuses a call without a session, and a token after logout', async () => {
    expect(
      (await fetch(`${base}/`, { method: 'POST', headers: FORM, body: form({ client: 'local', tgt: '*', fun: 'test.ping' }) })).status,
    ).toBe(401);
    const token = await login('saltdev', 's3cret');
    const out = await fetch(`${base}/logout`, { method: 'POST', headers: { 'X-Auth-Token': token, Accept: 'application/json' } });
    expect(await out.json()).toEqual({ return: 'Your token has been cleared' });
    const after = await fetch(`${base}/`, {
      method: 'POST',
      headers: { ...FORM, 'X-Auth-Token': token },
      body: form({ client: 'local', tgt: '*', fun: 'test.ping' }),
    });
    expect(after.status).toBe(401);
  });
});

describe('salt-api: lowstate', () => {
  it('runs local test.ping on every agent (form body)', async () => {
    const token = await login('saltdev', 's3cret');
    const r = await fetch(`${base}/`, {
      method: 'POST',
      headers: { ...FORM, 'X-Auth-Token': token },
      body: form({ client: 'local', tgt: '*', fun: 'test.ping' }),
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ return: [{ a: true, b: true, c: true }] });
  });

  it('takes a JSON list, a text/plain single object (as SaltGUI sends) and answers YAML on request', async () => {
    const token = await login('saltdev', 's3cret');
    const list = await fetch(`${base}/`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Auth-Token': token },
      body: JSON.stringify([
        { client: 'local', tgt: 'a', fun: 'test.arg', arg: ['x', 2] },
        { client: 'local', tgt: 'b,c', tgt_type: 'list', fun: 'test.ping' },
      ]),
    });
    const body = (await list.json()) as { return: [{ a: { args: unknown[] } }, Record<string, boolean>] };
    expect(body.return[0].a.args).toEqual(['x', 2]);
    expect(body.return[1]).toEqual({ b: true, c: true });

    const yaml = await fetch(`${base}/`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain;charset=UTF-8', Accept: 'application/x-yaml', 'X-Auth-Token': token },
      body: JSON.stringify({ client: 'local', tgt: 'a', fun: 'test.ping' }),
    });
    expect(yaml.headers.get('content-type')).toContain('application/x-yaml');
    expect(await yaml.text()).toBe('return:\n  - a: true\n');
  });

  it('answers 406 for an Accept it cannot give and a content type it does not read', async () => {
    const token = await login('saltdev', 's3cret');
    const accept = await fetch(`${base}/`, {
      method: 'POST',
      headers: { ...FORM, Accept: 'application/xml', 'X-Auth-Token': token },
      body: form({ client: 'local', tgt: 'a', fun: 'test.ping' }),
    });
    expect(accept.status).toBe(406);
    const ctype = await fetch(`${base}/`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/xml', 'X-Auth-Token': token },
      body: '<x/>',
    });
    expect(ctype.status).toBe(406);
    expect(await ctype.text()).toContain('Content type not supported');
  });

  it('local_async gives the jid, and GET /jobs/<jid> gives Salt info and return', async () => {
    const token = await login('saltdev', 's3cret');
    const r = await fetch(`${base}/`, {
      method: 'POST',
      headers: { ...FORM, 'X-Auth-Token': token },
      body: form({ client: 'local_async', tgt: '*', fun: 'test.ping' }),
    });
    const { jid, minions } = ((await r.json()) as { return: [{ jid: string; minions: string[] }] }).return[0];
    expect(jid).toMatch(/^\d{20}$/);
    expect(minions).toEqual(['a', 'b', 'c']);
    const job = await until(
      'the three returns in the job cache',
      async () => {
        const j = (await (
          await fetch(`${base}/jobs/${jid}`, { headers: { 'X-Auth-Token': token, Accept: 'application/json' } })
        ).json()) as {
          info: [Record<string, unknown>];
          return: [Record<string, unknown>];
        };
        return Object.keys(j.return[0]).length === 3 ? j : undefined;
      },
      15_000,
    );
    expect(job.info[0]).toMatchObject({
      jid,
      Function: 'test.ping',
      Target: '*',
      'Target-type': 'glob',
      User: 'saltdev',
      Minions: ['a', 'b', 'c'],
    });
    expect(job.return[0]).toEqual({ a: true, b: true, c: true });

    const jobs = (await (await fetch(`${base}/jobs`, { headers: { 'X-Auth-Token': token, Accept: 'application/json' } })).json()) as {
      return: [Record<string, { Function: string }>];
    };
    expect(jobs.return[0][jid]).toMatchObject({ Function: 'test.ping', User: 'saltdev' });
  });
});

describe('salt-api: external_auth', () => {
  it("refuses cmd.run to a user allowed only test.*, with salt-api's 401, and records the attempt", async () => {
    const token = await login('tester', 't3st');
    const ok = await fetch(`${base}/`, {
      method: 'POST',
      headers: { ...FORM, 'X-Auth-Token': token },
      body: form({ client: 'local', tgt: 'a', fun: 'test.ping' }),
    });
    expect(await ok.json()).toEqual({ return: [{ a: true }] });

    const r = await fetch(`${base}/`, {
      method: 'POST',
      headers: { ...FORM, 'X-Auth-Token': token },
      body: form({ client: 'local', tgt: '*', fun: 'cmd.run', arg: 'touch /tmp/jobledger-api-should-not-exist' }),
    });
    expect(r.status).toBe(401);
    expect(await r.text()).toContain('<p>Authorization error occurred.</p>');
    expect(fs.existsSync('/tmp/jobledger-api-should-not-exist')).toBe(false);
    const rows = await until(
      'the denial in salt_events',
      async () => {
        const got = await home.query<{ data: Record<string, unknown> }>(
          "SELECT data FROM salt_events WHERE tag = 'jobledger/publish/denied' AND data->>'user' = 'tester' ORDER BY id",
        );
        return got.length > 0 ? got : undefined;
      },
      15_000,
    );
    expect(rows[0]!.data).toMatchObject({ user: 'tester', eauth: 'file', fun: 'cmd.run', tgt: '*', error: 'AuthorizationError' });
  });

  it('refuses runners to a user without @runner or @jobs', async () => {
    const token = await login('tester', 't3st');
    const r = await fetch(`${base}/jobs`, { headers: { 'X-Auth-Token': token, Accept: 'application/json' } });
    expect(r.status).toBe(401);
    expect(await r.text()).toContain('Authentication failure of type "token" occurred for user tester.');
  });
});
