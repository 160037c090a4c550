// A fleet on several hosts, each host its own $JOBLEDGER_HOME: `master` in one, `agent`s in
// others, admitted by Salt's key workflow, with every refusal made by nats-server itself.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, credsAuthenticator, headers, type NatsConnection } from '@nats-io/transport-node';
import { createUser, type KeyPair } from '@nats-io/nkeys';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { encodeAgentId, inboxPrefix, msgIds, SIGNATURE_HEADER, SIGNER_HEADER, signedBytes, subjects } from '@jobledger/core';
import { connectNats, credsUserKey } from '@jobledger/runtime';
import { CliHome } from './support/cli.js';
import { until } from './support/until.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address() as net.AddressInfo;
      srv.close(() => resolve(addr.port));
    });
  });
}

const keys = (k: { accepted?: string[]; pending?: string[] }) =>
  `Accepted Keys:\n${(k.accepted ?? []).map((i) => i + '\n').join('')}Denied Keys:\nUnaccepted Keys:\n${(k.pending ?? []).map((i) => i + '\n').join('')}Rejected Keys:\n`;

const master = new CliHome('jobledger-master-');
const hostA = new CliHome('jobledger-host-a-');
const hostB = new CliHome('jobledger-host-b-');
let natsUrl = '';
let retPort = 0;
let caFile = '';

/** A client holding the agent's own credentials, as an attacker who stole them (or the agent itself) would. */
async function asAgent(home: CliHome): Promise<NatsConnection> {
  const creds = fs.readFileSync(path.join(home.root, 'pki', 'agent.creds'), 'utf8');
  return connect({
    servers: natsUrl,
    authenticator: credsAuthenticator(new TextEncoder().encode(creds)),
    inboxPrefix: inboxPrefix(credsUserKey(creds)),
    tls: { caFile },
    maxReconnectAttempts: 0,
    timeout: 3000,
  });
}

async function streamLastSeq(): Promise<number> {
  const nc = await connectNats({
    servers: natsUrl,
    auth: { credsFile: path.join(master.root, 'pki', 'cli.creds'), caFile },
  });
  try {
    return (await (await jetstreamManager(nc)).streams.info('LEDGER')).state.last_seq;
  } finally {
    await nc.close();
  }
}

beforeAll(async () => {
  const publish = await freePort();
  retPort = await freePort();
  fs.writeFileSync(path.join(master.root, 'master.yaml'), `publish_port: ${publish}\nret_port: ${retPort}\n`);
  const up = await master.run(['master', '--detach'], { timeoutMs: 180_000 });
  expect(up.stderr).toBe('');
  expect(up.code).toBe(0);
  const url = await master.run(['master', 'url']);
  expect(url.code).toBe(0);
  const lines = url.stdout.trim().split('\n');
  natsUrl = lines[0]!;
  expect(natsUrl).toBe(`tls://127.0.0.1:${publish}`);
  expect(lines[1]).toMatch(/^master_finger: '([0-9a-f]{2}:){31}[0-9a-f]{2}'$/);
  expect(lines[2]).toBe(`master_port: ${retPort}`);
  caFile = path.join(master.root, 'pki', 'ca.pem');
  expect(fs.statSync(path.join(master.root, 'pki', 'account.nk')).mode & 0o777).toBe(0o600);
  const url2 = await master.run(['db', 'url']);
  master.databaseUrl = url2.stdout.trim();
  for (const [home, id] of [
    [hostA, 'web-1'],
    [hostB, 'web-2'],
  ] as const) {
    const r = await home.run(['agent', '--master', natsUrl, '--master-port', String(retPort), '--id', id, '--detach']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('key pending');
    expect(fs.statSync(path.join(home.root, 'pki', 'agent.nk')).mode & 0o777).toBe(0o600);
  }
}, 240_000);

afterAll(async () => {
  for (const h of [hostA, hostB]) await h.run(['down']);
  await master.run(['down']);
  for (const h of [hostA, hostB, master]) h.remove();
});

describe('agents on other hosts, admitted by key', () => {
  it('lists new agents as Unaccepted; an accepted one answers, the other is reported as Salt reports an unaccepted minion', async () => {
    expect((await master.run(['key', 'list'])).stdout).toBe(keys({ pending: ['web-1', 'web-2'] }));
    const json = JSON.parse((await master.run(['key', 'list', '--out', 'json'])).stdout) as Record<string, string[]>;
    expect(json).toEqual({ minions: [], minions_pre: ['web-1', 'web-2'], minions_rejected: [], minions_denied: [] });
    // Nothing runs before acceptance: no agent is expected.
    const none = await master.run(['run', '*', 'test.ping']);
    expect(none.stdout).toBe('No minions matched the target. No command was sent, no jid was assigned.\n');

    const accept = await master.run(['key', 'accept', 'web-1', '-y']);
    expect(accept.stdout).toBe('The following keys are going to be accepted:\nUnaccepted Keys:\nweb-1\nKey for minion web-1 accepted.\n');
    // Within a few seconds, without a restart.
    const answered = await until(
      'web-1 to answer',
      async () => {
        const r = await master.run(['run', '*', 'test.ping']);
        return r.code === 0 ? r : undefined;
      },
      20_000,
    );
    expect(answered.stdout).toBe('web-1:\n    True\n');
    expect((await master.run(['key', 'list'])).stdout).toBe(keys({ accepted: ['web-1'], pending: ['web-2'] }));
    const listed = await master.run(['run', '-L', 'web-1,web-2', 'test.ping', '-t', '1', '--gather-job-timeout', '1']);
    expect(listed.stdout).toContain('web-1:\n    True\n');
    expect(listed.stdout).toContain('web-2:\n    Minion did not return. [No response]\n');
    const log = fs.readFileSync(path.join(hostB.root, 'logs', 'minion.log'), 'utf8');
    expect(log).toContain(
      '[ERROR   ] The Salt Master has cached the public key for this node, this salt minion will wait for 10 seconds before attempting to re-authenticate',
    );
    expect(log).toContain('[INFO    ] Waiting 10 seconds before retry.');
    const finger = await master.run(['key', 'finger', 'web-1']);
    expect(finger.stdout).toMatch(/^Accepted Keys:\nweb-1: {2}([0-9a-f]{2}:){31}[0-9a-f]{2}\n$/);
  }, 90_000);

  it("refuses, at the server, everything an agent's credentials are not for, and changes nothing", async () => {
    const before = await streamLastSeq();
    const rowsBefore = await master.query<{ n: string }>('select count(*) as n from salt_returns');
    await expect(connect({ servers: natsUrl, tls: { caFile }, maxReconnectAttempts: 0, timeout: 3000 })).rejects.toThrow(
      /Authorization Violation/,
    );

    const nc = await asAgent(hostA);
    try {
      const js = jetstream(nc, { timeout: 3000 });
      const jsm = await jetstreamManager(nc, { timeout: 3000 });
      const jid = '20261205120000000000';
      await expect(js.publish(`ledger.job.${jid}.new`, '{}', { msgID: `${jid}:new` })).rejects.toThrow(/Permissions Violation/);
      await expect(js.publish(`ledger.job.${jid}.ret.${encodeAgentId('web-2')}`, '{}', { msgID: `${jid}:ret:web-2` })).rejects.toThrow(
        /Permissions Violation/,
      );
      await expect(jsm.streams.delete('LEDGER')).rejects.toThrow(/Permissions Violation/);
      await expect(jsm.streams.purge('LEDGER')).rejects.toThrow(/Permissions Violation/);
      await expect(jsm.streams.update('LEDGER', { max_age: 1_000_000_000 })).rejects.toThrow(/Permissions Violation/);
      await expect(jsm.streams.update('LEDGER', { sealed: true } as never)).rejects.toThrow(/Permissions Violation/);
      await expect(jsm.consumers.delete('LEDGER', 'projector')).rejects.toThrow(/Permissions Violation/);
      await expect(jsm.streams.getMessage('LEDGER', { seq: 1 })).rejects.toThrow(/Permissions Violation/);
      // Other agents' large returns: the object store bucket cannot be read either.
      await expect(jsm.streams.getMessage('OBJ_ledger_returns', { seq: 1 })).rejects.toThrow(/Permissions Violation/);
      await expect(jsm.direct.getMessage('OBJ_ledger_returns', { seq: 1 })).rejects.toThrow(/Permissions Violation/);
      await expect(jsm.streams.info('OBJ_ledger_returns')).rejects.toThrow(/Permissions Violation/);
      for (const subject of ['ledger.>', 'jobledger.api.>', '_INBOX.>']) {
        const sub = nc.subscribe(subject);
        // A subscription the server refuses ends with the server's error.
        expect(String(await sub.closed)).toMatch(/Permissions Violation for Subscription/);
      }
    } finally {
      await nc.close().catch(() => undefined);
    }
    expect(await streamLastSeq()).toBe(before);
    expect(await master.query<{ n: string }>('select count(*) as n from salt_returns')).toEqual(rowsBefore);
  }, 60_000);

  it('records the accepted key in the ledger, and quarantines what no accepted key signed, even with admin credentials; audit verify names it', async () => {
    const agentKey = fs.readFileSync(path.join(hostA.root, 'pki', 'agent.pub'), 'utf8').trim();
    const keyRows = await until('the key event of web-1 to be projected', async () => {
      const r = await master.query<{ id: string; public_key: string; state: string }>('select id, public_key, state from agent_keys');
      return r.length > 0 ? r : undefined;
    });
    expect(keyRows).toEqual([{ id: 'web-1', public_key: agentKey, state: 'accepted' }]);

    const jid = (await master.query<{ jid: string }>("select jid from jobs where fun = 'test.ping' order by jid desc limit 1"))[0]!.jid;

    const ret = (id: string) =>
      JSON.stringify({
        type: 'job.returned',
        tag: `salt/job/${jid}/ret/${id}`,
        data: {
          jid,
          id,
          fun: 'test.ping',
          fun_args: [],
          return: 'forged',
          retcode: 0,
          success: true,
          _stamp: '2026-12-05T12:00:00.000000',
        },
      });
    const stranger = createUser();
    const sign = (kp: KeyPair, subject: string, body: string) => {
      const h = headers();
      h.set(SIGNER_HEADER, kp.getPublicKey());
      h.set(SIGNATURE_HEADER, Buffer.from(kp.sign(signedBytes(subject, new TextEncoder().encode(body)))).toString('base64url'));
      return h;
    };
    const adminNc = await connectNats({ servers: natsUrl, auth: { credsFile: path.join(master.root, 'pki', 'admin.creds'), caFile } });
    const forged: { seq: number; subject: string; reason: RegExp }[] = [];
    try {
      const js = jetstream(adminNc);
      const retSubject = subjects.jobRet(jid, 'web-1');
      // Unsigned; signed by a key nobody accepted; signed right but for other bytes; a job signed by an agent.
      forged.push({
        seq: (await js.publish(retSubject, ret('web-1'), { msgID: 'forged-1' })).seq,
        subject: retSubject,
        reason: /unsigned event/,
      });
      forged.push({
        seq: (await js.publish(retSubject, ret('web-1'), { msgID: 'forged-2', headers: sign(stranger, retSubject, ret('web-1')) })).seq,
        subject: retSubject,
        reason: /which is not the accepted key of 'web-1'/,
      });
      const other = ret('web-1').replace('forged', 'other');
      const h = sign(stranger, retSubject, other);
      h.set(SIGNER_HEADER, agentKey);
      forged.push({
        seq: (await js.publish(retSubject, ret('web-1'), { msgID: 'forged-3', headers: h })).seq,
        subject: retSubject,
        reason: /bad signature/,
      });
      const newJid = '20261205120000000001';
      const job = JSON.stringify({
        type: 'job.published',
        tag: newJid,
        data: {
          jid: newJid,
          tgt_type: 'glob',
          tgt: '*',
          user: 'root',
          fun: 'cmd.run',
          arg: ['id'],
          minions: ['web-1'],
          missing: [],
          ret: '',
          _stamp: '2026-12-05T12:00:00.000000',
        },
      });
      forged.push({
        seq: (await js.publish(subjects.jobNew(newJid), job, { msgID: 'forged-4', headers: sign(stranger, subjects.jobNew(newJid), job) }))
          .seq,
        subject: subjects.jobNew(newJid),
        reason: /which is not the master's event key/,
      });
    } finally {
      await adminNc.close();
    }
    const letters = await until('the forged events to be quarantined', async () => {
      const r = await master.query<{ seq: string; error: string }>('select seq, error from dead_letters where seq = any($1) order by seq', [
        forged.map((f) => f.seq),
      ]);
      return r.length === forged.length ? r : undefined;
    });
    for (const [i, f] of forged.entries()) expect(letters[i]!.error).toMatch(f.reason);
    expect(await master.query("select id from salt_returns where return::text like '%forged%'")).toEqual([]);
    expect(await master.query("select * from jids where jid = '20261205120000000001'")).toEqual([]);

    const verify = await master.run(['audit', 'verify'], { timeoutMs: 120_000 });
    expect(verify.code).toBe(1);
    for (const f of forged)
      expect(verify.stdout).toMatch(
        new RegExp(`^signature: seq ${f.seq} \\(${f.subject.replace(/\./g, '\\.')}\\): .*${f.reason.source}`, 'm'),
      );
    expect(verify.stdout).toContain(`audit verify: FAILED: 0 row differences, 0 chain values differ, ${forged.length} events badly signed`);
  }, 120_000);

  it('runs no service as a PostgreSQL superuser: the owner of the read models, and a role that may only SELECT', async () => {
    const owner = await master.query<{ user: string; rolsuper: boolean }>(
      'select current_user as user, rolsuper from pg_roles where rolname = current_user',
    );
    expect(owner).toEqual([{ user: 'jobledger_owner', rolsuper: false }]);
    await expect(master.query("copy (select 1) to program 'id'")).rejects.toThrow(
      /must be superuser or have privileges of the pg_execute_server_program/,
    );
    const ro = await master.run(['db', 'url', '--read-only']);
    expect(ro.code).toBe(0);
    const reader = new pg.Client({ connectionString: ro.stdout.trim() });
    await reader.connect();
    try {
      expect((await reader.query('select current_user as user')).rows).toEqual([{ user: 'jobledger_reader' }]);
      expect(Number((await reader.query('select count(*) as n from salt_returns')).rows[0].n)).toBeGreaterThan(0);
      for (const sql of [
        "insert into dead_letters values (1, 'x', 'x', 'x')",
        'delete from salt_returns',
        'create table t (x int)',
        "copy (select 1) to program 'id'",
      ]) {
        await expect(reader.query(sql)).rejects.toThrow(/permission denied|must be superuser/);
      }
    } finally {
      await reader.end();
    }
    // The dispatcher reads with the SELECT-only role (its runner); nobody is connected as a superuser.
    expect((await master.run(['runner', 'jobs.list_jobs'])).code).toBe(0);
    const sessions = await master.query<{ usename: string }>(
      "select distinct usename from pg_stat_activity where datname = 'jobledger' order by 1",
    );
    expect(sessions).toEqual([{ usename: 'jobledger_owner' }, { usename: 'jobledger_reader' }]);
  }, 60_000);

  it('cuts a deleted agent off at once: its connection is closed, its publishes refused, and no row of it appears', async () => {
    const nc = await asAgent(hostA);
    const closed = nc.closed();
    const del = await master.run(['key', 'delete', 'web-1', '-y']);
    expect(del.stdout).toBe('The following keys are going to be deleted:\nAccepted Keys:\nweb-1\nKey for minion web-1 deleted.\n');
    expect(String(await closed)).toMatch(/Authorization Violation|Revoked/i);
    const rows = await master.query<{ n: string }>("select count(*) as n from salt_returns where id = 'web-1'");
    await expect(asAgent(hostA)).rejects.toThrow(/Authorization Violation/);
    const none = await master.run(['run', '*', 'test.ping']);
    expect(none.stdout).toBe('No minions matched the target. No command was sent, no jid was assigned.\n');
    expect(await master.query<{ n: string }>("select count(*) as n from salt_returns where id = 'web-1'")).toEqual(rows);
    // As Salt's minion does, the agent asks again and waits as an unaccepted key.
    await until('web-1 to ask again', async () =>
      (await master.run(['key', 'list'])).stdout === keys({ pending: ['web-1', 'web-2'] }) ? true : undefined,
    );
    // The deletion is a key event too.
    await until('the deletion to be projected', async () =>
      (await master.query<{ state: string }>("select state from agent_keys where id = 'web-1'"))[0]?.state === 'deleted' ? true : undefined,
    );
    const acts = await master.query<{ act: string }>("select data->>'act' as act from salt_events where tag = 'salt/key' order by id");
    expect(acts.map((a) => a.act)).toEqual(['accept', 'delete']);
  }, 90_000);

  it("cannot swallow another agent's return by taking its Nats-Msg-Id first", async () => {
    const accept = await master.run(['key', 'accept', '-A', '-y']);
    expect(accept.code).toBe(0);
    await until('both agents to answer', async () => {
      const r = await master.run(['run', '*', 'test.ping']);
      return r.stdout === 'web-1:\n    True\nweb-2:\n    True\n' ? true : undefined;
    });
    const started = await master.run(['run', 'web-2', 'test.sleep', '3', '--async']);
    const jid = /Executed command with job ID: (\d{20})/.exec(started.stdout)?.[1];
    expect(jid, started.stdout).toBeDefined();
    // web-1, on its own subject (all its credentials allow), with the id web-2's return will carry.
    const nc = await until('web-1 to hold its new credentials', () => asAgent(hostA).catch(() => undefined));
    let forgedSeq = 0;
    try {
      const body = JSON.stringify({ type: 'job.returned', tag: `salt/job/${jid}/ret/web-1`, data: { jid, id: 'web-1', return: 'forged' } });
      const ack = await jetstream(nc).publish(subjects.jobRet(jid!, 'web-1'), body, { msgID: msgIds.jobRet(jid!, 'web-2') });
      expect(ack.duplicate).toBe(false);
      forgedSeq = ack.seq;
    } finally {
      await nc.close();
    }
    const rows = await until('the genuine return of web-2', async () => {
      const r = await master.query<{ id: string; return: unknown }>('select id, return from salt_returns where jid = $1', [jid]);
      return r.length > 0 ? r : undefined;
    });
    expect(rows).toEqual([{ id: 'web-2', return: true }]);
    // The forgery itself is quarantined (unsigned), and the agent said what it did.
    await until('the forgery to be quarantined', async () =>
      (await master.query('select seq from dead_letters where seq = $1', [forgedSeq])).length === 1 ? true : undefined,
    );
    // web-2 found its id taken on another subject and stored its return under a new one.
    const cli = await connectNats({ servers: natsUrl, auth: { credsFile: path.join(master.root, 'pki', 'cli.creds'), caFile } });
    try {
      const m = await (await jetstreamManager(cli)).streams.getMessage('LEDGER', { last_by_subj: subjects.jobRet(jid!, 'web-2') });
      expect(m?.header.get('Nats-Msg-Id')).toBe(`${msgIds.jobRet(jid!, 'web-2')}:${forgedSeq}`);
    } finally {
      await cli.close();
    }
    const lookup = await master.run(['runner', 'jobs.lookup_jid', jid!]);
    expect(lookup.stdout).toBe('web-2:\n    True\n');
  }, 90_000);

  it('stores a large return from another host in the object store, without reading the bucket', async () => {
    const size = 1_200_000;
    const r = await master.run(['run', '-v', '--out', 'json', 'web-2', 'cmd.run', `head -c ${size} /dev/zero | tr '\\0' y`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const jid = /jid (\d{20})/.exec(r.stdout)![1]!;
    expect((JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as Record<string, string>)['web-2']).toBe('y'.repeat(size));
    const rows = await until('the large return to be projected', async () => {
      const q = await master.query<{ n: number }>(`select length("return" #>> '{}')::int as n from salt_returns where jid = $1`, [jid]);
      return q.length > 0 ? q : undefined;
    });
    expect(rows).toEqual([{ n: size }]);
  }, 60_000);
});
