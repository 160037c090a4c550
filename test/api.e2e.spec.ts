// salt-api's rest_cherrypy contract through the real API service, dispatcher, agents and ledger:
// `up` starts the API because master.yaml has a rest_cherrypy: section; users log in by the
// file eauth (an htpasswd file of bcrypt hashes) and are held to their external_auth rules.

import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { spawn } from 'node:child_process';
import { createUser } from '@nats-io/nkeys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, CliHome, REPO_ROOT } from './support/cli.js';
import { writeApiMaster } from './support/api-master.js';
import { freePort } from './support/ports.js';
import { until } from './support/until.js';

const home = new CliHome('jobledger-api-e2e-');
let base = '';

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  writeApiMaster(home.root, port, {
    saltdev: { password: 's3cret', rules: ['.*', '@runner', '@wheel'] },
    tester: { password: 't3st', rules: ['test.*'] },
  });
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
    expect(reply).toMatchObject({ user: 'saltdev', eauth: 'file', perms: ['.*', '@runner', '@wheel'] });
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

describe('salt-api: GET /jobs', () => {
  it('filters by user and status and pages by keyset (after=<jid>), never overlapping', async () => {
    const token = await login('saltdev', 's3cret');
    const call = async (fields: Record<string, string>) =>
      (await (await fetch(`${base}/`, { method: 'POST', headers: { ...FORM, 'X-Auth-Token': token }, body: form(fields) })).json()) as {
        return: [Record<string, unknown>];
      };
    await call({ client: 'local', tgt: 'a', fun: 'cmd.run', arg: 'exit 3' });
    for (let i = 0; i < 3; i++) await call({ client: 'local', tgt: 'b', fun: 'test.ping' });
    const list = async (query: string) =>
      (
        (await (await fetch(`${base}/jobs?${query}`, { headers: { 'X-Auth-Token': token, Accept: 'application/json' } })).json()) as {
          return: [Record<string, { Function: string; User: string }>];
        }
      ).return[0];
    const all = await until('the jobs projected', async () => {
      const got = await list('user=saltdev&search_function=test.ping');
      return Object.keys(got).length >= 3 ? got : undefined;
    });
    expect(Object.values(all).every((j) => j.User === 'saltdev' && j.Function === 'test.ping')).toBe(true);
    const failed = await until('the failed job', async () => {
      const got = await list('user=saltdev&status=failed');
      return Object.keys(got).length > 0 ? got : undefined;
    });
    expect(Object.values(failed).map((j) => j.Function)).toEqual(['cmd.run']);
    // pages of 2, newest first; each page oldest first (Salt's order), the next page after its oldest
    const page1 = Object.keys(await list('user=saltdev&limit=2'));
    const page2 = Object.keys(await list(`user=saltdev&limit=2&after=${page1[0]}`));
    expect(page1).toHaveLength(2);
    expect(page2.length).toBeGreaterThan(0);
    expect(page2.every((j) => j < page1[0]!)).toBe(true);
    const bad = await fetch(`${base}/jobs?status=lost`, { headers: { 'X-Auth-Token': token, Accept: 'application/json' } });
    expect(JSON.stringify(await bad.json())).toContain('status must be one of running, failed, succeeded, no-return');
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

describe('salt-api: wheel and runner_async', () => {
  const post = async (token: string, fields: Record<string, string>) =>
    fetch(`${base}/`, { method: 'POST', headers: { ...FORM, 'X-Auth-Token': token }, body: form(fields) });

  it('lists, accepts, fingerprints and deletes keys through the wheel, and records the change in the ledger', async () => {
    const token = await login('saltdev', 's3cret');
    const newbie = createUser().getPublicKey();
    fs.writeFileSync(path.join(home.root, 'pki', 'minions_pre', 'newbie'), newbie + '\n', { mode: 0o600 });

    const listed = await fetch(`${base}/keys`, { headers: { 'X-Auth-Token': token, Accept: 'application/json' } });
    expect(listed.status).toBe(200);
    expect(await listed.json()).toEqual({
      return: { local: ['ca.pem'], minions: ['a', 'b', 'c'], minions_pre: ['newbie'], minions_rejected: [], minions_denied: [] },
    });

    const accepted = await post(token, { client: 'wheel', fun: 'key.accept', match: 'newbie' });
    expect(accepted.status).toBe(200);
    const ev = ((await accepted.json()) as { return: { tag: string; data: Record<string, unknown> }[] }).return[0]!;
    expect(ev.tag).toMatch(/^salt\/wheel\/\d{20}$/);
    expect(ev.data).toMatchObject({
      fun: 'wheel.key.accept',
      tag: ev.tag,
      user: 'saltdev',
      return: { minions: ['newbie'] },
      success: true,
    });
    expect((await home.run(['key', 'list'])).stdout).toContain('Accepted Keys:\na\nb\nc\nnewbie\n');
    await until(
      'the accepted key in agent_keys',
      async () => {
        const r = await home.query<{ state: string }>("SELECT state FROM agent_keys WHERE id = 'newbie'");
        return r[0]?.state === 'accepted' ? r : undefined;
      },
      15_000,
    );

    const finger = await fetch(`${base}/keys/newbie`, { headers: { 'X-Auth-Token': token, Accept: 'application/json' } });
    const fp = (await home.run(['key', 'finger', 'newbie'])).stdout.split('\n')[1]!.split(':  ')[1];
    expect(await finger.json()).toEqual({ return: { minions: { newbie: fp } } });

    const deleted = await post(token, { client: 'wheel', fun: 'key.delete', match: 'newbie' });
    expect(((await deleted.json()) as { return: { data: { return: unknown } }[] }).return[0]!.data.return).toEqual({});
    expect(fs.existsSync(path.join(home.root, 'pki', 'minions', 'newbie'))).toBe(false);
    await until(
      'the deletion in agent_keys',
      async () => {
        const r = await home.query<{ state: string }>("SELECT state FROM agent_keys WHERE id = 'newbie'");
        return r.length === 0 || r[0]!.state !== 'accepted' ? r : undefined;
      },
      15_000,
    );
  });

  it("refuses the wheel to a user without @wheel, with salt-api's 401, and records the attempt; /keys needs a session", async () => {
    expect((await fetch(`${base}/keys`, { headers: { Accept: 'application/json' } })).status).toBe(401);
    const token = await login('tester', 't3st');
    const r = await post(token, { client: 'wheel', fun: 'key.accept', match: '*' });
    expect(r.status).toBe(401);
    expect(await r.text()).toContain('Authentication failure of type "token" occurred for user tester.');
    const rows = await until(
      'the wheel denial in salt_events',
      async () => {
        const got = await home.query<{ data: Record<string, unknown> }>(
          "SELECT data FROM salt_events WHERE tag = 'jobledger/publish/denied' AND data->>'fun' = 'wheel.key.accept'",
        );
        return got.length > 0 ? got : undefined;
      },
      15_000,
    );
    expect(rows[0]!.data).toMatchObject({ user: 'tester', eauth: 'file', error: 'AuthenticationError' });
  });

  it('runner_async answers with the tag and jid at once; the runner job is in the ledger', async () => {
    const token = await login('saltdev', 's3cret');
    const r = await post(token, { client: 'runner_async', fun: 'jobs.active' });
    expect(r.status).toBe(200);
    const ret = ((await r.json()) as { return: { tag: string; jid: string }[] }).return[0]!;
    expect(ret.jid).toMatch(/^\d{20}$/);
    expect(ret.tag).toBe(`salt/run/${ret.jid}`);
    const rows = await until(
      'the runner return in salt_returns',
      async () => {
        const got = await home.query<{ fun: string }>('SELECT fun FROM salt_returns WHERE jid = $1', [ret.jid]);
        return got.length > 0 ? got : undefined;
      },
      15_000,
    );
    expect(rows[0]!.fun).toBe('runner.jobs.active');
  });
});

interface SseEvent {
  id: number;
  tag: string;
  data: { tag: string; data: Record<string, unknown> };
}

/** A live `/events` feed: parsed events as they come. */
async function openFeed(url: string, headers: Record<string, string> = {}) {
  const ac = new AbortController();
  const r = await fetch(url, { headers: { Accept: 'text/event-stream', ...headers }, signal: ac.signal });
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toContain('text/event-stream');
  const events: SseEvent[] = [];
  let raw = '';
  const reading = (async () => {
    const decoder = new StringDecoder('utf8');
    try {
      for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
        raw += decoder.write(Buffer.from(chunk));
        let end: number;
        while ((end = raw.indexOf('\n\n')) >= 0) {
          const block = raw.slice(0, end);
          raw = raw.slice(end + 2);
          const fields: Record<string, string> = {};
          for (const line of block.split('\n')) {
            const at = line.indexOf(': ');
            if (at > 0) fields[line.slice(0, at)] = line.slice(at + 2);
          }
          if (fields.id !== undefined)
            events.push({ id: Number(fields.id), tag: fields.tag!, data: JSON.parse(fields.data!) as SseEvent['data'] });
        }
      }
    } catch {
      /* aborted */
    }
  })();
  return {
    events,
    wait: (what: string, ok: (evs: SseEvent[]) => boolean) => until(what, () => (ok(events) ? events : undefined), 20_000),
    close: async () => {
      ac.abort();
      await reading;
    },
  };
}

const jidOf = (stdout: string) => /jid: (\d{20})/.exec(stdout)![1]!;

describe('salt-api: events', () => {
  it('streams tag/data with ids for a job run from the CLI, and Last-Event-ID resumes exactly after an id', async () => {
    const token = await login('saltdev', 's3cret');
    const feed = await openFeed(`${base}/events?token=${token}`);
    const run = await home.run(['run', '*', 'test.ping', '--show-jid']);
    expect(run.code).toBe(0);
    const jid = jidOf(run.stdout);
    const returns = (evs: SseEvent[]) => evs.filter((e) => e.tag.startsWith(`salt/job/${jid}/ret/`));
    await feed.wait('the three returns on the feed', (evs) => returns(evs).length === 3);
    await feed.close();
    const first = feed.events;
    const published = first.find((e) => e.tag === `salt/job/${jid}/new`)!;
    expect(published.data).toMatchObject({ tag: `salt/job/${jid}/new`, data: { jid, fun: 'test.ping', minions: ['a', 'b', 'c'] } });
    expect(returns(first).map((e) => e.data.data.return)).toEqual([true, true, true]);
    const ids = first.map((e) => e.id);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);

    // Resume right after the job's publication: every later event up to the last one seen, once.
    const resumed = await openFeed(`${base}/events`, { 'X-Auth-Token': token, 'Last-Event-ID': String(published.id) });
    const last = ids.at(-1)!;
    await resumed.wait('the resumed feed to reach the last id seen', (evs) => evs.some((e) => e.id >= last));
    await resumed.close();
    const after = first.filter((e) => e.id > published.id);
    expect(resumed.events.filter((e) => e.id <= last)).toEqual(after);
  });

  it('shows a user only the events of the jobs its rules allow', async () => {
    const token = await login('tester', 't3st');
    const feed = await openFeed(`${base}/events`, { 'X-Auth-Token': token });
    const hidden = jidOf((await home.run(['run', 'a', 'cmd.run', 'echo hidden', '--show-jid'])).stdout);
    const shown = jidOf((await home.run(['run', 'a', 'test.ping', '--show-jid'])).stdout);
    await feed.wait('the test.ping return', (evs) => evs.some((e) => e.tag === `salt/job/${shown}/ret/a`));
    await feed.close();
    expect(feed.events.some((e) => e.tag.includes(hidden))).toBe(false);
    expect(feed.events.some((e) => e.tag === `salt/job/${shown}/new`)).toBe(true);
  });

  it('refuses a feed without a session', async () => {
    expect((await fetch(`${base}/events`)).status).toBe(401);
    expect((await fetch(`${base}/events?token=${'0'.repeat(40)}`)).status).toBe(401);
  });
});

describe('OpenAPI', () => {
  it('serves the document at /openapi.json and a rendered page for it, without a session', async () => {
    const r = await fetch(`${base}/openapi.json`);
    expect(r.status).toBe(200);
    const doc = (await r.json()) as { openapi: string; paths: Record<string, Record<string, { summary?: string }>> };
    expect(doc.openapi).toBe('3.0.3');
    for (const route of ['/', '/login', '/logout', '/run', '/jobs', '/jobs/{jid}', '/minions', '/keys', '/events'])
      expect(Object.keys(doc.paths)).toContain(route);
    expect(doc.paths['/jobs']!.get!.summary).toContain('jobs.list_jobs');
    const page = await fetch(`${base}/openapi`, { redirect: 'follow' });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('swagger-ui');
  });
});

describe('jobledger api', () => {
  it("runs salt-api in the foreground for the home's ledger and stops on SIGTERM", async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [CLI_BIN, 'api'], {
      cwd: REPO_ROOT,
      env: { ...home.env(), JOBLEDGER_API_PORT: String(port) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const welcome = await until(
        'the foreground API',
        async () => {
          try {
            return (await (await fetch(`http://127.0.0.1:${port}/`, { headers: { Accept: 'application/json' } })).json()) as {
              return: string;
            };
          } catch {
            return undefined;
          }
        },
        30_000,
      );
      expect(welcome.return).toBe('Welcome');
      const token = await (async () => {
        const r = await fetch(`http://127.0.0.1:${port}/login`, {
          method: 'POST',
          headers: FORM,
          body: form({ username: 'saltdev', password: 's3cret', eauth: 'file' }),
        });
        return ((await r.json()) as { return: { token: string }[] }).return[0]!.token;
      })();
      const r = await fetch(`http://127.0.0.1:${port}/`, {
        method: 'POST',
        headers: { ...FORM, 'X-Auth-Token': token },
        body: form({ client: 'local', tgt: 'a', fun: 'test.ping' }),
      });
      expect(await r.json()).toEqual({ return: [{ a: true }] });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited, stderr).toBe(0);
  });
});
