import { setTimeout as delay } from 'node:timers/promises';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { headers, nuid, TimeoutError } from '@nats-io/transport-node';
import {
  decodeEvent,
  encodeEvent,
  jobPublishedTag,
  JidGenerator,
  msgIds,
  resolveTarget,
  saltStamp,
  SaltTexts,
  subjects,
  type JobPublished,
  type MicrosClock,
} from '@jobledger/core';
import { isStorageFull, type EventSigner, type Ledger, type Logger } from '@jobledger/runtime';
import { LedgerStorageFullError, LedgerUnavailableError, NoMinionsError, PublishValidationError } from './errors.js';
import type { AgentDirectory } from './presence.js';
import type { PublishJob, PublishSuccess } from './publish-request.js';

export interface JobPublisherOptions {
  ledger: Ledger;
  agents: AgentDirectory;
  clock: MicrosClock;
  /** The dispatcher's one jid source (shared with runner jobs, so no two jobs get one jid). */
  jids?: JidGenerator;
  logger: Logger;
  /** Milliseconds to wait for one PubAck. */
  publishTimeoutMs?: number;
  /** Signs `job.published` with the master's event key. */
  signer?: EventSigner | undefined;
}

/** Attempts with a fresh jid when another publisher already holds the jid's subject. */
const MAX_JIDS = 3;
/** Attempts of one append (same jid, same msg id) after a PubAck timeout. */
/**
 * How long a publish of `job.published` is retried while the stream has no leader (an election
 * in a cluster, a restarting nats-server): below the CLI's 20 s wait for the dispatcher's reply.
 */
const APPEND_RETRY_MS = 12_000;

/** No PubAck in time, or nobody answering on the stream's subjects: a leader is being elected. */
function leaderless(err: unknown): boolean {
  // The client reports "no responders" as JetStreamNotEnabled, a class it does not export.
  return err instanceof TimeoutError || (err instanceof Error && err.name === 'JetStreamNotEnabled');
}

/** Stored: at `seq`; `earlier` when the message stored is the same request's, sent before. */
type AppendOutcome = { stored: true; seq: number; earlier?: PublishSuccess } | { stored: false; reason: string };

/** Header naming the publish attempt that stored a message, to tell our duplicate from another's. */
export const PUBLISH_ID_HEADER = 'Jobledger-Publish-Id';

/**
 * Salt's master publish path (`ClearFuncs.publish`): expected minions, jid, then the
 * `salt/job/<jid>/new` event appended once to the ledger.
 */
export class JobPublisher {
  private readonly ledger: Ledger;
  private readonly agents: AgentDirectory;
  private readonly clock: MicrosClock;
  private readonly jids: JidGenerator;
  private readonly log: Logger;
  private readonly publishTimeoutMs: number;
  private readonly signer: EventSigner | undefined;

  constructor(opts: JobPublisherOptions) {
    this.ledger = opts.ledger;
    this.agents = opts.agents;
    this.clock = opts.clock;
    this.jids = opts.jids ?? new JidGenerator(opts.clock);
    this.log = opts.logger;
    this.publishTimeoutMs = opts.publishTimeoutMs ?? 2_500;
    this.signer = opts.signer;
  }

  /** Who is expected to answer; re-reads the presence keys once before settling for "nobody" or "missing". */
  async expectedMinions(job: Pick<PublishJob, 'tgt' | 'tgt_type' | 'delimiter'>): Promise<{ minions: string[]; missing: string[] }> {
    const { agents, source } = await this.agents.current();
    const opts = { delimiter: job.delimiter };
    const first = resolveTarget(agents, job.tgt, job.tgt_type, opts);
    if ((first.minions.length > 0 && first.missing.length === 0) || source === 'keys') return first;
    return resolveTarget(await this.agents.readAgents(), job.tgt, job.tgt_type, opts);
  }

  /** Appends the job; `expected` when the caller has resolved the target already. */
  async publish(job: PublishJob, expected?: { minions: string[]; missing: string[] }): Promise<PublishSuccess> {
    const { minions, missing } = expected ?? (await this.expectedMinions(job));
    // Salt's master answers "no minions" and publishes nothing; the CLI prints this text.
    if (minions.length === 0) throw new NoMinionsError(SaltTexts.noMinionsMatched);

    for (let attempt = 1; ; attempt++) {
      const jid = this.jids.next();
      const event: JobPublished = {
        type: 'job.published',
        tag: jobPublishedTag(jid),
        data: {
          jid,
          tgt_type: job.tgt_type,
          tgt: job.tgt,
          user: job.user,
          fun: job.fun,
          arg: job.arg,
          minions,
          missing,
          ret: job.ret,
          ...(job.ret_config !== undefined ? { ret_config: job.ret_config } : {}),
          ...(job.ret_kwargs !== undefined ? { ret_kwargs: job.ret_kwargs } : {}),
          ...(job.timeout !== undefined ? { timeout: job.timeout } : {}),
          ...(job.metadata !== undefined ? { metadata: job.metadata } : {}),
          ...(job.delimiter !== undefined ? { delimiter: job.delimiter } : {}),
          _stamp: saltStamp(this.clock()),
        },
      };
      const body = encodeEvent(event);
      const maxPayload = this.ledger.nc.info?.max_payload;
      if (maxPayload !== undefined && body.length > maxPayload) {
        throw new PublishValidationError(`the job is ${body.length} bytes; the server accepts at most ${maxPayload}`);
      }
      const outcome = await this.append(jid, body, job.request_id);
      if (outcome.stored) return outcome.earlier ?? { jid, minions, missing, seq: outcome.seq };
      this.log.warn({ jid, attempt, reason: outcome.reason }, 'jid already published by someone else; assigning another');
      if (attempt >= MAX_JIDS) throw new LedgerUnavailableError(`could not assign a unique jid after ${MAX_JIDS} attempts`);
    }
  }

  /**
   * Appends `job.published` once: deterministic msg id plus "no message on this subject yet".
   * A PubAck timeout or a leaderless stream is retried with the same message for up to 12 s
   * (deduplicated by the msg id); a duplicate ack is ours only if the stored message carries our
   * publish id.
   *
   * With the client's `requestId`, the msg id and the publish id are the request's: the same
   * request sent again (to this dispatcher or another one, after the first held it and died)
   * meets the stream's duplicate window, and the job stored the first time is the answer.
   */
  private async append(jid: string, body: Uint8Array, requestId?: string): Promise<AppendOutcome> {
    const { js, jsm, stream } = this.ledger;
    const publishId = requestId ?? nuid.next();
    const msgID = requestId !== undefined ? msgIds.request(requestId) : msgIds.jobNew(jid);
    const deadline = Date.now() + APPEND_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      let ack;
      try {
        const h = headers();
        h.set(PUBLISH_ID_HEADER, publishId);
        this.signer?.headers(subjects.jobNew(jid), body, h);
        ack = await js.publish(subjects.jobNew(jid), body, {
          headers: h,
          msgID,
          expect: { lastSubjectSequence: 0, streamName: stream },
          timeout: this.publishTimeoutMs,
        });
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) {
          return { stored: false, reason: err.message };
        }
        if (isStorageFull(err)) {
          throw new LedgerStorageFullError(
            `the ledger's storage is full: stream ${stream} refused the job (${(err as Error).message}); ` +
              'nothing was published. Try again once its nats-server has room on its disk.',
            { cause: err },
          );
        }
        if (leaderless(err) && Date.now() < deadline) {
          this.log.warn({ jid, attempt, err }, 'no PubAck; publishing again with the same msg id');
          await delay(Math.min(1_000, 50 * 2 ** attempt));
          continue;
        }
        if (leaderless(err)) {
          throw new LedgerUnavailableError(
            `stream ${stream} did not acknowledge the job within ${APPEND_RETRY_MS / 1000} s (${(err as Error).message}): ` +
              'no stream leader, or its nats-server not answering (a full disk?); the job may not have been published',
            { cause: err },
          );
        }
        throw new LedgerUnavailableError(`appending job.published to stream ${stream} failed: ${(err as Error).message}`, { cause: err });
      }
      if (!ack.duplicate) return { stored: true, seq: ack.seq };
      const stored = await jsm.streams.getMessage(stream, { seq: ack.seq }).catch((err: unknown) => {
        throw new LedgerUnavailableError(`reading back message ${ack.seq} failed: ${(err as Error).message}`, { cause: err });
      });
      if (stored !== null && stored.header?.get(PUBLISH_ID_HEADER) === publishId) {
        const event = decodeEvent(stored.data);
        if (event.type !== 'job.published') {
          return { stored: false, reason: `msg id ${msgID} already used by sequence ${ack.seq}, a ${event.type}` };
        }
        if (event.data.jid === jid) return { stored: true, seq: ack.seq };
        const { minions, missing } = event.data;
        this.log.info({ jid: event.data.jid, seq: ack.seq }, 'request sent again: its job was stored already');
        return { stored: true, seq: ack.seq, earlier: { jid: event.data.jid, minions, missing, seq: ack.seq } };
      }
      return { stored: false, reason: `msg id ${msgID} already used by sequence ${ack.seq}` };
    }
  }
}
