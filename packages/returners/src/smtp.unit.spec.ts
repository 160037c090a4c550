import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ReturnLoad } from '@jobledger/core';
import { ReturnerRegistry } from './registry.js';
import { recordingLogger } from './testing/recording-logger.js';

interface Received {
  envelope: { from: string; to: string[] };
  mail: ParsedMail;
  user?: string;
}

/** A real SMTP server on a random loopback port that parses what it receives. */
async function startSmtp(opts: { auth?: { user: string; pass: string } } = {}) {
  const received: Received[] = [];
  const server = new SMTPServer({
    disabledCommands: opts.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    allowInsecureAuth: true,
    authOptional: !opts.auth,
    logger: false,
    onAuth(auth, _session, cb) {
      if (opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass) cb(null, { user: auth.username });
      else cb(new Error('Invalid username or password'));
    },
    onData(stream, session, cb) {
      simpleParser(stream)
        .then((mail) => {
          received.push({
            envelope: {
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
              to: session.envelope.rcptTo.map((r) => r.address),
            },
            mail,
            ...(typeof session.user === 'string' ? { user: session.user } : {}),
          });
          cb();
        })
        .catch(cb);
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  const port = (server.server.address() as AddressInfo).port;
  return { port, received, close: () => new Promise<void>((r) => server.close(() => r())) };
}

let smtp: Awaited<ReturnType<typeof startSmtp>>;
let registry: ReturnerRegistry;

beforeEach(async () => {
  smtp = await startSmtp();
});

afterEach(async () => {
  await registry?.closeAll();
  await smtp.close();
});

const RET: ReturnLoad = {
  id: 'web1',
  jid: '20250301120000123456',
  fun: 'cmd.run',
  fun_args: ['uptime', { __kwarg__: true, cwd: '/tmp' }],
  return: { pid: 42, retcode: 0, stdout: "it's up", ok: true, none: null },
  retcode: 0,
  success: true,
};

function open(config: Record<string, unknown>) {
  registry = new ReturnerRegistry({ role: 'agent', hostId: 'web1', config, logger: recordingLogger() });
  return registry;
}

describe('smtp', () => {
  it("sends Salt's default subject with fields appended and its template-less body", async () => {
    const r = await open({
      smtp: {
        from: 'salt@example.com',
        to: 'ops@example.com, dev@example.com',
        host: '127.0.0.1',
        port: smtp.port,
        fields: 'id,fun,missing',
      },
    }).get('smtp');
    await r.returner(RET);
    expect(smtp.received).toHaveLength(1);
    const { envelope, mail } = smtp.received[0]!;
    expect(envelope).toEqual({ from: 'salt@example.com', to: ['ops@example.com', 'dev@example.com'] });
    expect(mail.subject).toBe('Email from Salt web1 cmd.run');
    expect(mail.from?.text).toBe('salt@example.com');
    expect(mail.date).toBeInstanceOf(Date);
    expect(mail.text).toBe(
      'id: web1\n' +
        'function: cmd.run\n' +
        "function args: ['uptime', {'__kwarg__': True, 'cwd': '/tmp'}]\n" +
        'jid: 20250301120000123456\n' +
        `return: {'pid': 42, 'retcode': 0, 'stdout': "it's up", 'ok': True, 'none': None}\n`,
    );
  });

  it('uses the configured subject, --return_config and login when username and password are set', async () => {
    await smtp.close();
    smtp = await startSmtp({ auth: { user: 'saltdev', pass: 's3cret' } });
    const reg = open({
      'smtp.from': 'salt@example.com',
      'smtp.to': 'ops@example.com',
      'smtp.host': '127.0.0.1',
      'smtp.port': smtp.port,
      'smtp.subject': 'Job done:',
      'alternative.smtp.username': 'saltdev',
      'alternative.smtp.password': 's3cret',
      'alternative.smtp.fields': ['jid'],
    });
    await (await reg.get('smtp', { retConfig: 'alternative' })).returner(RET);
    expect(smtp.received[0]!.mail.subject).toBe('Job done: 20250301120000123456');
    expect(smtp.received[0]!.user).toBe('saltdev');

    await expect(
      (await reg.get('smtp', { retConfig: 'alternative' })).returner({ ...RET, ret_kwargs: { password: 'wrong' } }),
    ).rejects.toMatchObject({
      // a login refused is for an operator to put right: a feed holds the return
      retryable: true,
      message: expect.stringContaining('could not send the return by mail'),
    });
  });

  it('a server that is not there is retryable; missing addresses are not', async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const reg = open({ smtp: { from: 'salt@example.com', to: 'ops@example.com', host: '127.0.0.1', port } });
    await expect((await reg.get('smtp')).returner(RET)).rejects.toMatchObject({
      retryable: true,
      message: expect.stringContaining(`127.0.0.1:${port}`),
    });
    await expect((await reg.get('smtp')).returner({ ...RET, ret_kwargs: { to: '' } })).rejects.toMatchObject({
      retryable: false,
      message: expect.stringContaining('from, to and host are required'),
    });
  });

  it('event_return mails the data of each event', async () => {
    const r = await open({
      smtp: { from: 'salt@example.com', to: 'ops@example.com', host: '127.0.0.1', port: smtp.port, fields: 'id' },
    }).get('smtp');
    await r.eventReturn!([
      { tag: 'salt/job/20250301120000123456/ret/web1', data: RET },
      { tag: 'salt/job/20250301120000123456/ret/web2', data: { ...RET, id: 'web2' } },
      { tag: 'empty', data: {} },
    ]);
    expect(smtp.received.map((m) => m.mail.subject)).toEqual(['Email from Salt web1', 'Email from Salt web2']);
  });
});
