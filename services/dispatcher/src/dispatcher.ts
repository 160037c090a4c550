import type { Msg, Subscription } from '@nats-io/transport-node';
import { apiSubjects, ErrorCodes, excerpt, JidGenerator, LedgerError, type MicrosClock } from '@jobledger/core';
import path from 'node:path';
import { masterEventSigner, openAgentsBucket, openLedger, type Logger } from '@jobledger/runtime';
import { anchoredMicrosClock } from '@jobledger/runtime';
import type { DispatcherConfig } from './config.js';
import { JobPublisher } from './job-publisher.js';
import { MasterConfigFile } from './master-config.js';
import { PublishAcl } from './publish-acl.js';
import { AgentDirectory } from './presence.js';
import { startRunnerService } from './runner/service.js';
import { parseNetapiPublishRequest, parsePublishRequest, type PublishFailure, type PublishReply } from './publish-request.js';

export const DISPATCHER_QUEUE = 'dispatcher';

export interface DispatcherOptions {
  /** Microsecond wall clock for jids and `_stamp`s; default hrtime anchored to Date.now(). */
  clock?: MicrosClock;
  /** Milliseconds to wait for one PubAck. */
  publishTimeoutMs?: number;
  /** Milliseconds a presence read may take. */
  presenceTimeoutMs?: number;
}

export interface Dispatcher {
  /** Stops taking requests, finishes those in flight, closes the connection. Idempotent. */
  stop(): Promise<void>;
}

const encoder = new TextEncoder();

/** The reply for an error: LedgerErrors keep their code; anything else is reported as unavailable. */
export function errorReply(err: unknown): PublishFailure {
  // Never more than an excerpt of a message: it may quote the request.
  if (err instanceof LedgerError) return { error: { code: err.code, message: excerpt(err.message, 1000) } };
  return { error: { code: ErrorCodes.Unavailable, message: `dispatcher error: ${excerpt((err as Error)?.message ?? String(err), 300)}` } };
}

/** Serves `jobledger.api.publish` in queue group `dispatcher` until stopped. */
export async function startDispatcher(config: DispatcherConfig, logger: Logger, opts: DispatcherOptions = {}): Promise<Dispatcher> {
  const ledger = await openLedger({
    natsUrl: config.natsUrl,
    stream: config.stream,
    name: `jobledger-dispatcher:${config.masterId}`,
    auth: config.natsAuth,
  });
  const { nc } = ledger;
  let agents: AgentDirectory | undefined;
  let sub: Subscription | undefined;
  let netapiSub: Subscription | undefined;
  try {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') logger.warn({ status: s.type }, 'nats connection');
      }
    })();

    const kv = await openAgentsBucket(ledger);
    agents = await AgentDirectory.open({ kv, logger: logger.child({ component: 'presence' }), timeoutMs: opts.presenceTimeoutMs });
    const clock = opts.clock ?? anchoredMicrosClock();
    // One jid source for jobs and runner jobs: two jids drawn in one microsecond still differ.
    const jids = new JidGenerator(clock);
    // The master's event key signs what the dispatcher appends (absent: a dispatcher without the master's home).
    const signer = masterEventSigner(path.join(config.home, 'pki'));
    if (!signer) logger.warn({ pkiDir: path.join(config.home, 'pki') }, 'no master event key: events are appended unsigned');
    const publisher = new JobPublisher({ ledger, agents, clock, jids, logger, publishTimeoutMs: opts.publishTimeoutMs, signer });
    // Nodegroups: re-read whenever the file changes.
    const masterConfig = new MasterConfigFile(config.masterConfigFile, logger.child({ component: 'master-config' }));
    masterConfig.current();
    const acl = new PublishAcl({ ledger, agents, clock, logger, signer });

    const inFlight = new Set<Promise<void>>();
    // `netapi`: from the HTTP API, for a user it authenticated by external_auth (only the API's
    // credentials may publish there); otherwise the CLI's user, by publisher_acl.
    const handle = async (msg: Msg, netapi: boolean): Promise<void> => {
      const started = process.hrtime.bigint();
      let reply: PublishReply;
      try {
        const config = masterConfig.current();
        const ctx = { nodegroups: config.nodegroups, masterConfigFile: masterConfig.file };
        const { job, eauth } = netapi
          ? parseNetapiPublishRequest(msg.data, ctx)
          : { job: parsePublishRequest(msg.data, ctx), eauth: undefined };
        // Salt's order: blacklist, expected minions, ACL, then "no minions".
        await acl.checkBlacklist(job, config, eauth);
        const expected = await publisher.expectedMinions(job);
        if (eauth !== undefined) await acl.authorizeEauth(job, expected.minions, config, eauth);
        else await acl.authorize(job, expected.minions, config);
        reply = await publisher.publish(job, expected);
        logger.info(
          {
            jid: reply.jid,
            seq: reply.seq,
            fun: job.fun,
            tgt_type: job.tgt_type,
            minions: reply.minions.length,
            missing: reply.missing.length,
            ms: ms(started),
          },
          'job published',
        );
      } catch (err) {
        reply = errorReply(err);
        const level = err instanceof LedgerError && !err.retryable ? 'info' : 'error';
        logger[level]({ err, code: reply.error.code, ms: ms(started) }, 'publish request refused');
      }
      if (msg.reply) msg.respond(encoder.encode(JSON.stringify(reply)));
    };

    const serve = (subject: string, netapi: boolean) =>
      nc.subscribe(subject, {
        queue: DISPATCHER_QUEUE,
        callback: (err, msg) => {
          if (err) {
            logger.error({ err, subject }, 'publish subscription error');
            return;
          }
          const p = handle(msg, netapi).finally(() => inFlight.delete(p));
          inFlight.add(p);
        },
      });
    sub = serve(apiSubjects.publish, false);
    netapiSub = serve(apiSubjects.netapiPublish, true);
    await nc.flush();
    logger.info(
      { subject: apiSubjects.publish, queue: DISPATCHER_QUEUE, stream: config.stream, masterId: config.masterId },
      'dispatcher serving',
    );

    // Salt's salt-run: `jobledger.api.runner`, in the same queue group.
    const runner = await startRunnerService({
      ledger,
      signer,
      publish: (job) => publisher.publish(job),
      clock,
      jids,
      logger,
      databaseUrl: config.databaseUrl,
      projectorConsumer: config.projectorConsumer,
      queue: DISPATCHER_QUEUE,
      publishTimeoutMs: opts.publishTimeoutMs,
      authorizeEauth: (req, eauth) => acl.authorizeRunner(req, masterConfig.current(), eauth),
    });

    let stopping: Promise<void> | undefined;
    const subscriptions = [sub, netapiSub];
    const directory = agents;
    return {
      stop() {
        stopping ??= (async () => {
          for (const s of subscriptions) if (!s.isClosed()) await s.drain().catch(() => undefined);
          await Promise.allSettled(inFlight);
          await runner.stop();
          await directory.stop();
          if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
          logger.info('dispatcher stopped');
        })();
        return stopping;
      },
    };
  } catch (err) {
    await agents?.stop().catch(() => undefined);
    await nc.close().catch(() => undefined);
    throw err;
  }
}

function ms(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e6;
}
