import { z } from 'zod';
import { agentStarted } from './agent-started.js';
import { jobPublished } from './job-published.js';
import { jobReturned } from './job-returned.js';
import { keyAccepted, keyDeleted, keyRejected } from './key.js';
import { procEnded, procSignalled, procStarted } from './proc.js';
import { publishDenied } from './publish-denied.js';
import { returnerFailed } from './returner.js';
import { runnerPublished, runnerReturned } from './runner.js';
import { EventVersionError, upcastEnvelope, withCurrentVersion } from './upcast.js';
import { Limits, nestsDeeperThan } from '../limits.js';

export * from './common.js';
export * from './agent-started.js';
export * from './job-published.js';
export * from './job-returned.js';
export * from './key.js';
export * from './proc.js';
export * from './publish-denied.js';
export * from './returner.js';
export * from './runner.js';
export * from './upcast.js';

/** Every event of the ledger, keyed on `type`. */
export const ledgerEvent = z.discriminatedUnion('type', [
  jobPublished,
  jobReturned,
  procStarted,
  procSignalled,
  procEnded,
  agentStarted,
  runnerPublished,
  runnerReturned,
  returnerFailed,
  publishDenied,
  keyAccepted,
  keyRejected,
  keyDeleted,
]);
export type LedgerEvent = z.infer<typeof ledgerEvent>;
export type LedgerEventType = LedgerEvent['type'];

export class EventValidationError extends Error {
  override readonly name = 'EventValidationError';
  readonly retryable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/**
 * Decodes and validates one message body; throws EventValidationError naming what is wrong.
 * A body of an older schema version is first upcast to the current one (see upcast.ts).
 */
export function decodeEvent(body: Uint8Array): LedgerEvent {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(body));
  } catch (cause) {
    throw new EventValidationError(`not a JSON document: ${(cause as Error).message}`, { cause });
  }
  // Deeper data would overflow the stack where it is serialised again (and PostgreSQL's jsonb).
  if (nestsDeeperThan(json, Limits.eventDepth))
    throw new EventValidationError(`invalid event: nested more than ${Limits.eventDepth} levels deep`);
  try {
    json = upcastEnvelope(json);
  } catch (cause) {
    if (!(cause instanceof EventVersionError)) throw cause;
    throw new EventValidationError(`invalid event: ${cause.message}`, { cause });
  }
  const parsed = ledgerEvent.safeParse(json);
  if (!parsed.success) {
    throw new EventValidationError(`invalid event: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
  }
  return parsed.data;
}

/** Validates an event before it is appended, and serialises it in its type's current version. */
export function encodeEvent(event: LedgerEvent): Uint8Array {
  return encoder.encode(JSON.stringify(withCurrentVersion(ledgerEvent.parse(event))));
}

/** Compile-time exhaustiveness check for switches over event types. */
export function assertNever(x: never): never {
  throw new Error(`unhandled event: ${JSON.stringify(x)}`);
}
