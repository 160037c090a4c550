/**
 * Salt's `smtp_return` (virtual name `smtp`): one e-mail per return, sent with nodemailer.
 *
 * Options (`smtp.<opt>` or a `smtp:` mapping): `from`, `to` (comma-separated), `host` (all
 * three required), `port` (default 25), `username` and `password` (login only when both are
 * set), `tls` (STARTTLS only when exactly `true`, as Salt), `subject` (default
 * "Email from Salt"), `fields` (comma-separated return keys whose values are appended to the
 * subject, each after a space). The body is Salt's built-in template:
 * `id: …\r\nfunction: …\r\nfunction args: …\r\njid: …\r\nreturn: …\r\n`, values as Python's
 * `str()` shows them. Salt's `template`, `renderer` and `gpgowner` (Jinja templates, GPG
 * encryption) are not supported: a return with one of them set is refused.
 */
import nodemailer from 'nodemailer';
import {
  ReturnerError,
  type ReturnLoad,
  type Returner,
  type ReturnerContext,
  type ReturnerEvent,
  type ReturnerModule,
} from '@jobledger/core';
import { errorCode, errorText, isPlainObject, optionText, pyStr, returnerOptions } from './support.js';

const NAME = 'smtp';
export const DEFAULT_SUBJECT = 'Email from Salt';
const ATTRS = ['from', 'to', 'host', 'port', 'username', 'password', 'subject', 'gpgowner', 'fields', 'tls', 'renderer', 'template'];

function list(v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  const items = Array.isArray(v) ? v.map(optionText) : optionText(v).split(',');
  return items.map((s) => s.trim()).filter((s) => s !== '');
}

/** Salt's subject: the configured one (or the default) plus ` <ret[field]>` per field present. */
export function smtpSubject(subject: unknown, fields: unknown, ret: ReturnLoad): string {
  let out = typeof subject === 'string' && subject !== '' ? subject : DEFAULT_SUBJECT;
  for (const field of list(fields)) {
    if (field in ret) out += ` ${pyStr(ret[field])}`;
  }
  return out;
}

/** Salt's template-less body. */
export function smtpBody(ret: ReturnLoad): string {
  return (
    `id: ${pyStr(ret.id)}\r\n` +
    `function: ${pyStr(ret.fun)}\r\n` +
    `function args: ${pyStr(ret.fun_args)}\r\n` +
    `jid: ${pyStr(ret.jid)}\r\n` +
    `return: ${pyStr(ret.return)}\r\n`
  );
}

class SmtpReturner implements Returner {
  constructor(private readonly ctx: ReturnerContext) {}

  async returner(ret: ReturnLoad): Promise<void> {
    const opts = returnerOptions(this.ctx, NAME, ATTRS, {}, ret);
    for (const unsupported of ['template', 'gpgowner'] as const) {
      if (opts[unsupported]) {
        throw new ReturnerError(NAME, `option ${unsupported} is not supported by jobledger's smtp returner`, { retryable: false });
      }
    }
    const from = opts['from'];
    const to = list(opts['to']);
    const host = opts['host'];
    if (typeof from !== 'string' || from === '' || to.length === 0 || typeof host !== 'string' || host === '') {
      throw new ReturnerError(NAME, 'options from, to and host are required', { retryable: false });
    }
    const port = opts['port'] === undefined || opts['port'] === '' || opts['port'] === 0 ? 25 : Number(opts['port']);
    if (!Number.isInteger(port) || port <= 0 || port > 65535) {
      throw new ReturnerError(NAME, `option port must be a TCP port, got ${JSON.stringify(opts['port'])}`, { retryable: false });
    }
    const tls = opts['tls'] === true;
    const user = opts['username'];
    const pass = opts['password'];
    const subject = smtpSubject(opts['subject'], opts['fields'], ret);
    this.ctx.logger.debug({ jid: ret.jid, minion: ret.id }, `smtp_return: Subject is '${subject}'`);

    const transport = nodemailer.createTransport({
      host,
      port,
      secure: false,
      requireTLS: tls,
      ignoreTLS: !tls,
      connectionTimeout: 30_000,
      greetingTimeout: 30_000,
      socketTimeout: 60_000,
      ...(user && pass ? { auth: { user: optionText(user), pass: optionText(pass) } } : {}),
    });
    try {
      await transport.sendMail({ from, to, subject, text: smtpBody(ret), date: new Date() });
    } catch (err) {
      const code = errorCode(err);
      throw new ReturnerError(NAME, `could not send the return by mail through ${host}:${port}: ${errorText(err)}`, {
        // Only a message the server refuses (EMESSAGE: too large, content refused) fails the same
        // way again; a server down, a login or a recipient refused are for an operator to put
        // right, so whoever feeds this returner holds the return.
        retryable: code !== 'EMESSAGE',
        cause: err,
      });
    } finally {
      transport.close();
    }
  }

  /** Salt's `event_return`: one mail per event that carries data. */
  async eventReturn(events: readonly ReturnerEvent[]): Promise<void> {
    for (const event of events) {
      if (isPlainObject(event.data) && Object.keys(event.data).length > 0) {
        await this.returner(event.data as ReturnLoad);
      }
    }
  }
}

export const smtp: ReturnerModule = {
  name: NAME,
  description: 'Sends each return by e-mail',
  create: (ctx) => new SmtpReturner(ctx),
};
