import type { LedgerEvent } from './events/index.js';
import type { ParsedSubject } from './subjects.js';

/** The subject kind each event type is published on. */
export const EVENT_SUBJECT_KIND = {
  'job.published': 'job.new',
  'job.returned': 'job.ret',
  'proc.started': 'job.proc',
  'proc.signalled': 'job.proc',
  'proc.ended': 'job.proc',
  'agent.started': 'agent.start',
  'runner.published': 'run.new',
  'runner.returned': 'run.ret',
  'returner.failed': 'job.returner',
  'publish.denied': 'publish.denied',
  'key.accepted': 'key',
  'key.rejected': 'key',
  'key.deleted': 'key',
} as const satisfies Record<LedgerEvent['type'], ParsedSubject['kind']>;

/**
 * Why a valid event does not belong on its (parsed) subject — another kind of subject, another
 * jid or another agent id than the event's — or undefined when it does. The projector makes
 * such a message a dead letter; `audit trail` shows it with this text.
 */
export function eventSubjectMismatch(subject: ParsedSubject, event: LedgerEvent): string | undefined {
  const want = EVENT_SUBJECT_KIND[event.type];
  if (subject.kind !== want) return `a ${event.type} event on a ${subject.kind} subject (expected ${want})`;
  if ('jid' in subject && 'jid' in event.data && subject.jid !== event.data.jid) {
    return `jid ${JSON.stringify(event.data.jid)} in the event, ${JSON.stringify(subject.jid)} in the subject`;
  }
  if ('agentId' in subject && subject.agentId !== event.data.id) {
    return `agent id ${JSON.stringify(event.data.id)} in the event, ${JSON.stringify(subject.agentId)} in the subject`;
  }
  return undefined;
}
