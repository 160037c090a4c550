import { DeliverPolicy } from '@nats-io/jetstream';
import { decodeEvent } from '@jobledger/core';
import { SHORT_PULLS, type Ledger } from '@jobledger/runtime';

/**
 * The returns of a job the master published itself (`jobs.active` runs `saltutil.running`),
 * read from the stream as the CLI reads them: an ordered consumer on `ledger.job.<jid>.ret.*`
 * from the job's own publication on, until every expected agent has returned or the time is up.
 * Result: `{id: return}` (Salt's `LocalClient.cmd`).
 */
export async function collectReturns(
  ledger: Ledger,
  job: { jid: string; seq: number; minions: readonly string[] },
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const outstanding = new Set(job.minions);
  if (outstanding.size === 0) return out;
  const consumer = await ledger.js.consumers.get(ledger.stream, {
    filter_subjects: `ledger.job.${job.jid}.ret.*`,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, job.seq),
  });
  const messages = await consumer.consume({ max_messages: 256, ...SHORT_PULLS });
  const timer = setTimeout(() => void messages.stop(), timeoutMs);
  try {
    for await (const m of messages) {
      let event;
      try {
        event = decodeEvent(m.data);
      } catch {
        continue; // a dead letter for the projector; nothing to report
      }
      if (event.type !== 'job.returned') continue;
      out[event.data.id] = event.data.return;
      outstanding.delete(event.data.id);
      if (outstanding.size === 0) break;
    }
  } finally {
    clearTimeout(timer);
    void messages.stop();
  }
  return out;
}
