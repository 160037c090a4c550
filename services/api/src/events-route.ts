import type { FastifyInstance, FastifyRequest } from 'fastify';
import { routeDocs } from './route-docs.js';
import { decodeEvent, type AclRule } from '@jobledger/core';
import type { LedgerClient } from '@jobledger/runtime/ledger-client';
import { EventVisibility } from './event-visibility.js';
import { ApiTexts, HttpError } from './http-errors.js';
import type { Session, SessionStore } from './sessions.js';

export interface EventsRouteOptions {
  ledger: LedgerClient;
  sessions: SessionStore;
  rulesOf(session: Session): AclRule[];
  /** The token a request carries in its header or cookie. */
  presentedToken(req: FastifyRequest): string | undefined;
  /** Milliseconds between keep-alive comments. */
  heartbeatMs?: number;
}

/**
 * `GET /events`: salt-api's Server-Sent Events (`tag:` and `data:` lines, `data` the whole
 * `{"tag", "data"}` event as one JSON line), read from the ledger stream, plus what salt-api
 * cannot do: every event carries `id: <stream sequence>`, a client that reconnects with
 * `Last-Event-ID` gets exactly the events after that one, and each user sees only the events
 * its ACL lets it see. The session is checked again before every event; the feed ends when it
 * has expired or logged out. A `: keep-alive` comment goes out every 15 s.
 */
export function registerEventsRoute(app: FastifyInstance, opts: EventsRouteOptions): void {
  app.get<{ Querystring: Record<string, string> }>('/events', { schema: routeDocs.events }, async (req, reply) => {
    const { token: queryToken, ...rest } = req.query;
    if (Object.keys(rest).length > 0) throw new HttpError(400, ApiTexts.eventsQuery);
    const token = opts.presentedToken(req) ?? queryToken;
    const session = opts.sessions.get(token);
    if (session === undefined || token === undefined) throw new HttpError(401);
    const lastId = req.headers['last-event-id'];
    const last = typeof lastId === 'string' && /^\d+$/.test(lastId.trim()) ? Number(lastId.trim()) : undefined;
    const visibility = new EventVisibility(session.user, opts.rulesOf(session), (jid) => opts.ledger.jobPublication(jid));
    const messages = await opts.ledger.consumeAll(last === undefined ? undefined : last + 1);

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream;charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    // salt-api's first line, without a blank line after it.
    res.write('retry: 400\n');
    const write = (text: string): Promise<void> =>
      res.write(text) ? Promise.resolve() : new Promise((resolve) => res.once('drain', () => resolve()));
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), opts.heartbeatMs ?? 15_000);
    const stop = () => void messages.stop();
    req.raw.once('close', stop);
    try {
      for await (const m of messages) {
        if (res.destroyed) break;
        if (opts.sessions.get(token) === undefined) break;
        let event;
        try {
          event = decodeEvent(m.data);
        } catch {
          continue; // quarantined by the projector: not an event of the job system
        }
        if (!(await visibility.visible(event))) continue;
        const data = JSON.stringify({ tag: event.tag, data: event.data });
        await write(`id: ${m.seq}\ntag: ${event.tag}\ndata: ${data}\n\n`);
      }
    } finally {
      clearInterval(heartbeat);
      req.raw.off('close', stop);
      stop();
      res.end();
    }
  });
}
