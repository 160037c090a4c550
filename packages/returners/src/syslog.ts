/**
 * Salt's `syslog_return` (virtual name `syslog`): each return as `json.dumps(ret)`, sent to the
 * local syslog daemon the way glibc's `syslog(3)` does, an RFC 3164 line
 * `<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE` over the Unix datagram socket `/dev/log`.
 *
 * Options (`syslog.<opt>` or a `syslog:` mapping): `level` (default `LOG_INFO`), `facility`
 * (default `LOG_USER`), `tag` (default the program name: `salt-minion` for an agent,
 * `salt-master` on the master; at most 32 characters), `options` (list, default `[]`; `LOG_PID`
 * adds `[pid]`). jobledger adds `socket`, the datagram socket's path (default `/dev/log`).
 */
import { stat } from 'node:fs/promises';
import type * as UnixDgramModule from 'unix-dgram';
import { ReturnerError, type ReturnLoad, type Returner, type ReturnerContext, type ReturnerModule } from '@jobledger/core';
import { errorText, returnerOptions, saltJsonDumps } from './support.js';

const NAME = 'syslog';
export const DEFAULT_SYSLOG_SOCKET = '/dev/log';

/** Python's `syslog` module constants (Linux values). */
export const SYSLOG_CONSTANTS: Readonly<Record<string, number>> = {
  LOG_EMERG: 0,
  LOG_ALERT: 1,
  LOG_CRIT: 2,
  LOG_ERR: 3,
  LOG_WARNING: 4,
  LOG_NOTICE: 5,
  LOG_INFO: 6,
  LOG_DEBUG: 7,
  LOG_KERN: 0 << 3,
  LOG_USER: 1 << 3,
  LOG_MAIL: 2 << 3,
  LOG_DAEMON: 3 << 3,
  LOG_AUTH: 4 << 3,
  LOG_SYSLOG: 5 << 3,
  LOG_LPR: 6 << 3,
  LOG_NEWS: 7 << 3,
  LOG_UUCP: 8 << 3,
  LOG_CRON: 9 << 3,
  LOG_AUTHPRIV: 10 << 3,
  LOG_FTP: 11 << 3,
  LOG_LOCAL0: 16 << 3,
  LOG_LOCAL1: 17 << 3,
  LOG_LOCAL2: 18 << 3,
  LOG_LOCAL3: 19 << 3,
  LOG_LOCAL4: 20 << 3,
  LOG_LOCAL5: 21 << 3,
  LOG_LOCAL6: 22 << 3,
  LOG_LOCAL7: 23 << 3,
  LOG_PID: 0x01,
  LOG_CONS: 0x02,
  LOG_ODELAY: 0x04,
  LOG_NDELAY: 0x08,
  LOG_NOWAIT: 0x10,
  LOG_PERROR: 0x20,
};

/** Functions of Python's `syslog` module: attributes that exist but are not ints. */
const SYSLOG_FUNCTIONS = new Set(['LOG_MASK', 'LOG_UPTO', 'openlog', 'closelog', 'syslog', 'setlogmask']);

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** glibc's syslog header: `<PRI>Mmm dd hh:mm:ss ` in local time, the day padded with a space. */
export function syslogHeader(pri: number, at: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const day = String(at.getDate()).padStart(2, ' ');
  return `<${pri}>${MONTHS[at.getMonth()]} ${day} ${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())} `;
}

export interface SyslogSettings {
  pri: number;
  tag: string;
  logPid: boolean;
  socket: string;
}

/** Salt's `_verify_options`, as one error text, or the settings to send with. */
export function syslogSettings(opts: Record<string, unknown>, defaultTag: string): SyslogSettings | string {
  const rawOptions = opts['options'];
  const options = Array.isArray(rawOptions)
    ? rawOptions
    : rawOptions === undefined || rawOptions === null || rawOptions === ''
      ? []
      : [rawOptions];
  const checks: [string, unknown][] = [
    ['level', opts['level']],
    ['facility', opts['facility']],
    ...options.map((o): [string, unknown] => ['option', o]),
  ];
  for (const [what, value] of checks) {
    const name = String(value);
    if (SYSLOG_FUNCTIONS.has(name)) return `${name} is not a valid syslog ${what}`;
    if (!Object.prototype.hasOwnProperty.call(SYSLOG_CONSTANTS, name)) return `syslog has no attribute ${name}`;
  }
  let tag = defaultTag;
  if (opts['tag'] !== undefined && opts['tag'] !== null) {
    if (typeof opts['tag'] !== 'string') return 'tag must be a string';
    if (opts['tag'].length > 32) return 'tag size is limited to 32 characters';
    tag = opts['tag'];
  }
  const value = (n: unknown) => SYSLOG_CONSTANTS[String(n)]!;
  const logoption = options.reduce<number>((acc, o) => acc | value(o), 0);
  const socket = typeof opts['socket'] === 'string' && opts['socket'] !== '' ? opts['socket'] : DEFAULT_SYSLOG_SOCKET;
  return {
    pri: value(opts['facility']) | value(opts['level']),
    tag,
    logPid: (logoption & SYSLOG_CONSTANTS['LOG_PID']!) !== 0,
    socket,
  };
}

/** The datagram glibc's syslog(3) sends for one message. */
export function syslogDatagram(settings: SyslogSettings, message: string, at: Date = new Date(), pid = process.pid): Buffer {
  const ident = settings.logPid ? `${settings.tag}[${pid}]` : settings.tag;
  return Buffer.from(`${syslogHeader(settings.pri, at)}${ident}: ${message}`, 'utf8');
}

type UnixDgram = typeof UnixDgramModule;

const ERRNO: Readonly<Record<number, string>> = {
  // unix-dgram's own code for a send that would block (EAGAIN, EWOULDBLOCK or ENOBUFS).
  [1]: 'congestion',
  [-2]: 'ENOENT',
  [-11]: 'EAGAIN',
  [-13]: 'EACCES',
  [-90]: 'EMSGSIZE',
  [-91]: 'EPROTOTYPE',
  [-105]: 'ENOBUFS',
  [-111]: 'ECONNREFUSED',
};

/**
 * The ReturnerError for a failed send: a missing socket, nobody listening and a full socket
 * queue (EAGAIN, ENOBUFS, or unix-dgram's `congestion`, code 1) may pass; a datagram too
 * long for the socket will not.
 */
export function syslogSendError(socketPath: string, length: number, err: unknown): ReturnerError {
  const raw = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  const code = typeof raw === 'number' ? ERRNO[raw] : undefined;
  const text = code ?? errorText(err);
  if (code === 'ENOENT') {
    return new ReturnerError(NAME, `the syslog socket ${socketPath} does not exist (is a syslog daemon running?)`, {
      retryable: true,
      cause: err,
    });
  }
  if (code === 'ECONNREFUSED') {
    return new ReturnerError(NAME, `nothing listens on the syslog socket ${socketPath} (is the syslog daemon running?)`, {
      retryable: true,
      cause: err,
    });
  }
  if (code === 'EMSGSIZE') {
    return new ReturnerError(NAME, `the return (${length} bytes) is too long for one datagram on ${socketPath}`, {
      retryable: false,
      cause: err,
    });
  }
  // A full socket buffer (the daemon is behind) clears by itself.
  const retryable = code === 'EAGAIN' || code === 'ENOBUFS' || code === 'congestion';
  return new ReturnerError(NAME, `could not send to the syslog socket ${socketPath}: ${text}`, { retryable, cause: err });
}

/** Sends one datagram to a Unix datagram socket at `socketPath`. */
export async function sendUnixDatagram(socketPath: string, datagram: Buffer): Promise<void> {
  let unix: UnixDgram;
  try {
    unix = await import('unix-dgram');
  } catch (err) {
    throw new ReturnerError(NAME, `the native module unix-dgram could not be loaded (was it built?): ${errorText(err)}`, {
      retryable: false,
      cause: err,
    });
  }
  const sock = unix.createSocket('unix_dgram');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.send(datagram, 0, datagram.length, socketPath, (err) => (err ? reject(err) : resolve()));
    });
  } catch (err) {
    throw syslogSendError(socketPath, datagram.length, err);
  } finally {
    try {
      sock.close();
    } catch {
      // already closed
    }
  }
}

class SyslogReturner implements Returner {
  constructor(private readonly ctx: ReturnerContext) {}

  async returner(ret: ReturnLoad): Promise<void> {
    const opts = returnerOptions(
      this.ctx,
      NAME,
      ['level', 'facility', 'tag', 'options', 'socket'],
      { level: 'LOG_INFO', facility: 'LOG_USER', options: [] },
      ret,
    );
    const settings = syslogSettings(opts, this.ctx.role === 'master' ? 'salt-master' : 'salt-minion');
    if (typeof settings === 'string') throw new ReturnerError(NAME, settings, { retryable: false });
    try {
      await stat(settings.socket);
    } catch (err) {
      throw new ReturnerError(NAME, `the syslog socket ${settings.socket} does not exist (is a syslog daemon running?)`, {
        retryable: true,
        cause: err,
      });
    }
    await sendUnixDatagram(settings.socket, syslogDatagram(settings, saltJsonDumps(ret)));
  }
}

export const syslog: ReturnerModule = {
  name: NAME,
  description: 'Sends each return to the local syslog daemon (RFC 3164 over /dev/log)',
  create: (ctx) => new SyslogReturner(ctx),
};
