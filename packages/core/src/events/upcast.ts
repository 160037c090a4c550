/**
 * Schema versions of the event envelope, and the upcasters that read old versions.
 *
 * Every message body is `{v?, type, tag, data}`. `v` is the version of the shape of that
 * event type; absent means 1. A reader upcasts an old body one version at a time — the
 * upcaster registered for (type, n) turns version n into n + 1 — until it has the current
 * shape, and only then validates it. Recorded history is never rewritten: a shape change
 * adds a version and its upcaster here, and old messages keep reading as new ones.
 *
 * Writers always write the current version (`encodeEvent`); version 1 is written without `v`,
 * so the bytes of version-1 events are the same as before versions existed.
 *
 * Registered versions:
 * - `job.returned` 0 → 1: version 0 is a return load without `success` (and possibly without
 *   `retcode`). Version 1 has both; the upcaster sets a missing `retcode` to 0 and `success` to
 *   `retcode == 0`, which is how Salt's minion sets it. Version 0 bodies carry `"v": 0`. No
 *   jobledger service ever wrote version 0: it is defined for reading older recorded history,
 *   and the golden history `old-shape-returns` (test/fixtures/golden) is recorded in it.
 */

/** An envelope before validation: JSON whose shape is not known yet. */
export interface RawEnvelope {
  v?: unknown;
  type?: unknown;
  tag?: unknown;
  data?: unknown;
  [key: string]: unknown;
}

/** Turns the body of version n of one event type into version n + 1 (data not validated yet). */
export type Upcaster = (envelope: RawEnvelope) => RawEnvelope;

/** The version each event type is written in now. A type missing here is at version 1. */
export const CURRENT_EVENT_VERSIONS: Readonly<Record<string, number>> = {
  'job.published': 1,
  'job.returned': 1,
  'proc.started': 1,
  'proc.signalled': 1,
  'proc.ended': 1,
  'agent.started': 1,
  'runner.published': 1,
  'runner.returned': 1,
  'publish.denied': 1,
  'key.accepted': 1,
  'key.rejected': 1,
  'key.deleted': 1,
};

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `job.returned` 0 → 1: `success` is `retcode == 0`, a missing `retcode` is 0. */
const jobReturnedV0: Upcaster = (envelope) => {
  if (!isRecord(envelope.data)) return envelope;
  const data = { ...envelope.data };
  if (data.retcode === undefined) data.retcode = 0;
  if (data.success === undefined) data.success = data.retcode === 0;
  return { ...envelope, data };
};

/** Upcasters by event type, then by the version they read. */
export const UPCASTERS: Readonly<Record<string, Readonly<Record<number, Upcaster>>>> = {
  'job.returned': { 0: jobReturnedV0 },
};

/** Why an old body cannot be brought to the current shape. */
export class EventVersionError extends Error {
  override readonly name = 'EventVersionError';
  readonly retryable = false;
}

/** The version an event type is written in now (1 for a type with no entry). */
export function currentEventVersion(type: string): number {
  return CURRENT_EVENT_VERSIONS[type] ?? 1;
}

/**
 * Brings a parsed body to the current version of its type and drops `v`. A body that is not
 * an envelope with a string `type` is returned as it is, for validation to reject. Throws
 * EventVersionError for a version that is not a whole number, newer than this code knows,
 * or with no upcaster on the way.
 */
export function upcastEnvelope(
  json: unknown,
  upcasters: Readonly<Record<string, Readonly<Record<number, Upcaster>>>> = UPCASTERS,
  current: (type: string) => number = currentEventVersion,
): unknown {
  if (!isRecord(json) || typeof json.type !== 'string') return json;
  const type = json.type;
  const target = current(type);
  const v = json.v ?? 1;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new EventVersionError(`version ${JSON.stringify(json.v)} of ${type} is not a whole number`);
  }
  if (v > target) {
    throw new EventVersionError(`version ${v} of ${type} is newer than this jobledger reads (${target})`);
  }
  let envelope: RawEnvelope = json;
  for (let at = v; at < target; at++) {
    const step = upcasters[type]?.[at];
    if (step === undefined) throw new EventVersionError(`no upcaster from version ${at} of ${type}`);
    envelope = step(envelope);
  }
  const { v: _version, ...rest } = envelope;
  return rest;
}

/** The envelope as written: `v` only when the type's current version is not 1. */
export function withCurrentVersion<E extends { type: string }>(
  event: E,
  current: (type: string) => number = currentEventVersion,
): E & { v?: number } {
  const v = current(event.type);
  return v === 1 ? event : { v, ...event };
}
