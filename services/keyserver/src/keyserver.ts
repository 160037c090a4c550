import fs from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import { z } from 'zod';
import { invalidAgentId, zodIssuesText, type KeyState } from '@jobledger/core';
import { readConfigFile, sleepUnlessAborted, type EventSigner, type Ledger, type Logger } from '@jobledger/runtime';
import { KeyStore, agentGroup, issueAgentJwt, pkiFiles, syncKeyEvents, verifyAuthRequest } from '@jobledger/runtime/pki';
import type { KeyserverConfig } from './config.js';

/**
 * Salt's master auth on the ret port: an agent posts its ids and public key, signed with that
 * key. A new id goes to the pending keys (or straight to the accepted ones with `auto_accept`);
 * an id that already has another key is denied. The answer waits (up to `wait` seconds) for an
 * operator's `key accept`, so an accepted agent starts within moments; it carries each id's
 * state and, when any is accepted, a user JWT for the agent's key allowing its accepted ids.
 */

const MAX_IDS = 10_000;

export const authRequestBody = z.strictObject({
  ids: z
    .array(z.string().max(1024))
    .min(1)
    .max(MAX_IDS)
    .superRefine((ids, ctx) => {
      for (const id of ids) {
        const bad = invalidAgentId(id);
        if (bad) ctx.addIssue({ code: 'custom', message: `invalid minion id '${id.slice(0, 80)}': ${bad}` });
      }
      if (new Set(ids).size !== ids.length) ctx.addIssue({ code: 'custom', message: 'an id is named twice' });
    }),
  publicKey: z.string().regex(/^U[A-Z2-7]{55}$/, 'not a user nkey'),
  ts: z.number().int(),
  sig: z.string().max(200),
  wait: z.number().min(0).max(60).optional(),
});

export interface AuthAnswer {
  states: Record<string, KeyState>;
  group: string;
  jwt?: string;
}

function autoAccept(file: string): boolean {
  const v = readConfigFile(file).auto_accept;
  return v === true || v === 'True' || v === 'true';
}

export class Keyserver {
  readonly store: KeyStore;
  private app: FastifyInstance | undefined;

  constructor(
    private readonly config: KeyserverConfig,
    private readonly log: Logger,
    /** Where key events are appended, and the master's event key that signs them. */
    private readonly ledger: { ledger: Ledger; signer: EventSigner },
  ) {
    this.store = new KeyStore(config.pkiDir);
  }

  /** Appends the key events the ledger lacks (all ids when omitted): before a key is handed out. */
  syncKeyEvents(ids?: readonly string[]): Promise<number> {
    return syncKeyEvents(this.ledger.ledger, this.store, this.ledger.signer, { ...(ids ? { ids } : {}), log: this.log });
  }

  /** Each id's state for that key, registering what is new. */
  register(ids: readonly string[], publicKey: string): Record<string, KeyState> {
    const states: Record<string, KeyState> = {};
    const accept = autoAccept(this.config.masterConfigFile);
    for (const id of ids) {
      const rec = this.store.get(id);
      if (rec === undefined) {
        this.store.put(id, accept ? 'accepted' : 'pending', publicKey);
        this.log.info({ agent: id, state: accept ? 'accepted' : 'pending' }, accept ? 'new key accepted (auto_accept)' : 'new key pending');
        states[id] = accept ? 'accepted' : 'pending';
      } else if (rec.publicKey === publicKey) {
        states[id] = rec.state;
      } else {
        if (this.store.read('denied', id) !== publicKey) {
          this.store.put(id, 'denied', publicKey);
          this.log.warn({ agent: id }, 'a second key for an id that has one: denied');
        }
        states[id] = 'denied';
      }
    }
    return states;
  }

  private current(ids: readonly string[], publicKey: string): Record<string, KeyState> {
    const states: Record<string, KeyState> = {};
    for (const id of ids) {
      const rec = this.store.get(id);
      states[id] = rec === undefined ? 'pending' : rec.publicKey === publicKey ? rec.state : 'denied';
    }
    return states;
  }

  async answer(body: z.infer<typeof authRequestBody>, signal: AbortSignal): Promise<AuthAnswer> {
    let states = this.register(body.ids, body.publicKey);
    const until = Date.now() + (body.wait ?? 0) * 1000;
    const settled = (s: Record<string, KeyState>) => Object.values(s).some((v) => v === 'accepted' || v === 'rejected');
    const initial = JSON.stringify(states);
    while (!settled(states) && Date.now() < until && !signal.aborted) {
      await sleepUnlessAborted(200, signal);
      states = this.current(body.ids, body.publicKey);
      if (JSON.stringify(states) !== initial) break;
    }
    const accepted = body.ids.filter((id) => states[id] === 'accepted');
    const answer: AuthAnswer = { states, group: agentGroup(body.publicKey) };
    if (accepted.length > 0) {
      // The ledger knows the key before the first event signed with it.
      await this.syncKeyEvents(accepted);
      answer.jwt = await issueAgentJwt(this.config.pkiDir, { userPublicKey: body.publicKey, ids: accepted, stream: this.config.stream });
    }
    return answer;
  }

  async start(): Promise<{ port: number }> {
    const f = pkiFiles(this.config.pkiDir);
    const app = Fastify({
      https: { key: fs.readFileSync(f.serverKey), cert: fs.readFileSync(f.serverCert, 'utf8') + fs.readFileSync(f.ca, 'utf8') },
      bodyLimit: 1024 * 1024,
      logger: false,
      connectionTimeout: 120_000,
    });
    app.post('/v1/auth', async (req, reply) => {
      const parsed = authRequestBody.safeParse(req.body);
      if (!parsed.success) return reply.code(400).send({ error: zodIssuesText(parsed.error) });
      const bad = verifyAuthRequest(parsed.data);
      if (bad) {
        this.log.warn({ reason: bad }, 'refused an authentication request');
        return reply.code(401).send({ error: `authentication refused: ${bad}` });
      }
      const abort = new AbortController();
      reply.raw.once('close', () => abort.abort());
      return this.answer(parsed.data, abort.signal);
    });
    app.setErrorHandler((err: { statusCode?: number; message: string }, _req, reply) => {
      void reply.code(err.statusCode && err.statusCode < 500 ? err.statusCode : 500).send({ error: err.message });
    });
    await app.listen({ host: this.config.host, port: this.config.port });
    this.app = app;
    const addr = app.server.address();
    return { port: typeof addr === 'object' && addr ? addr.port : this.config.port };
  }

  async stop(): Promise<void> {
    await this.app?.close();
  }
}
