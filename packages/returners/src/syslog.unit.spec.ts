import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import path from 'node:path';
import { createSocket, type UnixDgramSocket } from 'unix-dgram';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReturnerError, type ReturnLoad } from '@jobledger/core';
import { ReturnerRegistry } from './registry.js';
import { syslogHeader, syslogSendError } from './syslog.js';
import { recordingLogger } from './testing/recording-logger.js';

/** A syslog daemon of the test's own: a Unix datagram socket that keeps what it receives. */
interface Daemon {
  path: string;
  received: string[];
  next(): Promise<string>;
  close(): void;
}

function startDaemon(socketPath: string): Promise<Daemon> {
  return new Promise((resolve, reject) => {
    const received: string[] = [];
    const waiting: ((line: string) => void)[] = [];
    const sock: UnixDgramSocket = createSocket('unix_dgram', (msg) => {
      const line = msg.toString('utf8');
      const w = waiting.shift();
      if (w) w(line);
      else received.push(line);
    });
    sock.once('error', reject);
    sock.once('listening', () =>
      resolve({
        path: socketPath,
        received,
        next: () =>
          received.length > 0
            ? Promise.resolve(received.shift()!)
            : new Promise<string>((res, rej) => {
                const t = setTimeout(() => rej(new Error('no datagram within 5 s')), 5000);
                waiting.push((l) => {
                  clearTimeout(t);
                  res(l);
                });
              }),
        close: () => sock.close(),
      }),
    );
    sock.bind(socketPath);
  });
}

let dir: string;
let daemon: Daemon;
let registry: ReturnerRegistry;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'jobledger-syslog-'));
  daemon = await startDaemon(path.join(dir, 'log'));
});

afterEach(async () => {
  daemon.close();
  await registry?.closeAll();
  await rm(dir, { recursive: true, force: true });
});

const RET: ReturnLoad = {
  id: 'web1',
  jid: '20250301120000123456',
  fun: 'test.ping',
  fun_args: [],
  return: true,
  retcode: 0,
  success: true,
};

function open(config: Record<string, unknown>, role: 'agent' | 'master' = 'agent') {
  registry = new ReturnerRegistry({ role, hostId: 'web1', config, logger: recordingLogger() });
  return registry;
}

describe('syslog', () => {
  it('sends an RFC 3164 line <PRI>Mmm dd hh:mm:ss salt-minion: <json.dumps(ret)> by default', async () => {
    const r = await open({ syslog: { socket: daemon.path } }).get('syslog');
    const before = new Date();
    await r.returner(RET);
    const line = await daemon.next();
    const m = /^<14>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) salt-minion: (.*)$/s.exec(line);
    expect(m, line).not.toBeNull();
    // the header is the local time of sending
    const after = new Date();
    expect([syslogHeader(14, before).slice(4, -1), syslogHeader(14, after).slice(4, -1)]).toContain(m![1]);
    expect(m![2]).toBe(
      '{"id": "web1", "jid": "20250301120000123456", "fun": "test.ping", "fun_args": [], "return": true, "retcode": 0, "success": true}',
    );
  });

  it('level, facility, tag and LOG_PID come from the options; --return_kwargs override', async () => {
    const reg = open(
      {
        'syslog.level': 'LOG_ERR',
        'syslog.facility': 'LOG_DAEMON',
        'syslog.tag': 'mysalt',
        'syslog.options': ['LOG_PID'],
        'syslog.socket': daemon.path,
      },
      'master',
    );
    await (await reg.get('syslog')).returner(RET);
    expect(await daemon.next()).toMatch(new RegExp(`^<27>.{15} mysalt\\[${process.pid}\\]: \\{"id": "web1"`));
    await (await reg.get('syslog')).returner({ ...RET, ret_kwargs: { level: 'LOG_DEBUG', facility: 'LOG_LOCAL0', options: [] } });
    expect(await daemon.next()).toMatch(/^<135>.{15} mysalt: \{/);
  });

  it('a missing socket is a retryable error that says so', async () => {
    const missing = path.join(dir, 'nosuch');
    const r = await open({ 'syslog.socket': missing }).get('syslog');
    const err = (await r.returner(RET).catch((e: unknown) => e)) as ReturnerError;
    expect(err).toBeInstanceOf(ReturnerError);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(`the syslog socket ${missing} does not exist`);
  });

  it('a socket nobody listens on any more is retryable', async () => {
    daemon.close();
    const r = await open({ 'syslog.socket': daemon.path }).get('syslog');
    await expect(r.returner(RET)).rejects.toMatchObject({ retryable: true, message: expect.stringContaining(daemon.path) });
    daemon = await startDaemon(path.join(dir, 'log2'));
  });

  it("rejects what Salt's _verify_options rejects, sending nothing", async () => {
    const reg = open({ 'syslog.socket': daemon.path });
    const cases: [Record<string, unknown>, string][] = [
      [{ level: 'LOG_LOUD' }, 'syslog has no attribute LOG_LOUD'],
      [{ facility: 'LOG_MASK' }, 'LOG_MASK is not a valid syslog facility'],
      [{ options: ['LOG_NOPE'] }, 'syslog has no attribute LOG_NOPE'],
      [{ tag: 'x'.repeat(33) }, 'tag size is limited to 32 characters'],
      [{ tag: 5 }, 'tag must be a string'],
    ];
    for (const [kwargs, text] of cases) {
      const r = await reg.get('syslog');
      await expect(r.returner({ ...RET, ret_kwargs: kwargs })).rejects.toMatchObject({
        retryable: false,
        message: expect.stringContaining(text),
      });
    }
    expect(daemon.received).toEqual([]);
  });

  it("unix-dgram's congestion (code 1, from a connected send) is retryable; a too-long datagram is not", () => {
    // The error unix-dgram's internalError(1, 'congestion') builds.
    const congestion = Object.assign(new Error('congestion'), { code: 1 });
    const err = syslogSendError('/dev/log', 100, congestion);
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('/dev/log: congestion');
    expect(syslogSendError('/dev/log', 100, Object.assign(new Error('send -105'), { code: -105 })).retryable).toBe(true);
    expect(syslogSendError('/dev/log', 100, Object.assign(new Error('send -11'), { code: -11 })).retryable).toBe(true);
    expect(syslogSendError('/dev/log', 9e5, Object.assign(new Error('send -90'), { code: -90 })).retryable).toBe(false);
  });

  it('a null tag (YAML `tag:`) falls back to the default tag, as in Salt', async () => {
    const r = await open({ syslog: { socket: daemon.path, tag: null, level: null, options: null } }).get('syslog');
    await r.returner(RET);
    expect(await daemon.next()).toMatch(/^<14>.{15} salt-minion: \{/);
  });

  it('a daemon that does not keep up (a full socket queue: congestion) is retryable', async () => {
    // A real syslog socket that is never read: its queue fills up.
    const sockPath = path.join(dir, 'stuck');
    const stuck = spawn('python3', [
      '-c',
      'import socket,sys,time\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("ready",flush=True)\ntime.sleep(60)',
      sockPath,
    ]);
    try {
      await once(stuck.stdout, 'data');
      await stat(sockPath);
      const r = await open({ 'syslog.socket': sockPath }).get('syslog');
      let err: unknown;
      for (let i = 0; i < 20_000 && err === undefined; i++) {
        err = await r.returner(RET).then(
          () => undefined,
          (e: unknown) => e,
        );
      }
      expect(err).toBeInstanceOf(ReturnerError);
      expect((err as ReturnerError).message).toMatch(/: (EAGAIN|ENOBUFS|congestion)$/);
      expect((err as ReturnerError).retryable).toBe(true);
    } finally {
      stuck.kill();
      await sleep(10);
    }
  }, 60_000);
});
