import os from 'node:os';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';
import { apiSubjects, decodeEvent, type JobReturnedData } from '@jobledger/core';

/** Salt's texts for a master that cannot be reached. */
export const MASTER_UNREACHABLE = 'Failed to connect to the Master, is the Salt Master running?';

export class MasterUnreachableError extends Error {
  override readonly name = 'MasterUnreachableError';
  readonly retryable = true;
}

export interface PublishRequest {
  tgt: string | string[];
  tgt_type: string;
  fun: string;
  arg: unknown[];
  kwarg: Record<string, unknown>;
  user: string;
  ret: string;
  timeout?: number;
  metadata?: Record<string, unknown>;
}

export type PublishReply =
  { jid: string; minions: string[]; missing: string[]; seq: number } | { error: { code: string; message: string } };

/** The invoking account as Salt names it: `sudo_<name>` when root through sudo. */
export function invokingUser(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SUDO_USER) return `sudo_${env.SUDO_USER}`;
  try {
    return os.userInfo().username;
  } catch {
    return 'root';
  }
}

export class LedgerClient {
  private constructor(
    readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly stream: string,
  ) {}

  static async connect(natsUrl: string, stream: string): Promise<LedgerClient> {
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: natsUrl, name: 'jobledger-cli', timeout: 3000 });
    } catch (cause) {
      throw new MasterUnreachableError(MASTER_UNREACHABLE, { cause });
    }
    return new LedgerClient(nc, jetstream(nc), stream);
  }

  async publish(req: PublishRequest, timeoutMs = 10_000): Promise<PublishReply> {
    try {
      const msg = await this.nc.request(apiSubjects.publish, JSON.stringify(req), { timeout: timeoutMs });
      return msg.json<PublishReply>();
    } catch (cause) {
      throw new MasterUnreachableError(MASTER_UNREACHABLE, { cause });
    }
  }

  /**
   * Every return of a job, read from the stream from the job's own publication on, so a
   * return stored before the CLI started listening is still seen. Ends when `signal` aborts.
   */
  async *returns(jid: string, fromSeq: number, signal: AbortSignal): AsyncGenerator<JobReturnedData> {
    const consumer = await this.js.consumers.get(this.stream, {
      filter_subjects: `ledger.job.${jid}.ret.*`,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSeq),
    });
    const messages = await consumer.consume({ max_messages: 256 });
    const stop = () => void messages.stop();
    if (signal.aborted) stop();
    signal.addEventListener('abort', stop, { once: true });
    try {
      for await (const m of messages) {
        if (signal.aborted) break;
        let event;
        try {
          event = decodeEvent(m.data);
        } catch {
          continue; // quarantined by the projector; nothing to print
        }
        if (event.type === 'job.returned') yield event.data;
      }
    } finally {
      signal.removeEventListener('abort', stop);
      stop();
    }
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}
