import os from 'node:os';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, type NatsAuth } from '@jobledger/runtime/nats-connect';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { decodeEvent, eventSubjectMismatch, isJid, LEDGER_SUBJECTS, parseDateTime, parseSubject, type LedgerEvent } from '@jobledger/core';
import { homeLayout, NotRunningError, readState } from '../home.js';
import { MASTER_UNREACHABLE, MasterUnreachableError } from '@jobledger/runtime/ledger-client';
import { processIo, type Io } from './run.js';

/**
 * `jobledger audit trail`: the ledger's events as they are in the stream — not the read
 * models — in stream order, as an aligned table or as JSON lines. A message that fails
 * validation is shown with its error; it never ends the trail.
 *
 * The stream is read with ordered consumers (nats-server 2.9: one filter subject each), from
 * `--since` (the first sequence at that time, found with `opt_start_time`) or the first message, up to the stream's last sequence when
 * the command started. `--jid` narrows the subjects read (`ledger.job.<jid>.>` and
 * `ledger.run.<jid>.>`, merged by sequence); `--agent` and `--user` are applied to the
 * decoded events.
 */

/** One stream message as read for the trail. */
export interface TrailMessage {
  seq: number;
  subject: string;
  data: Uint8Array;
  /** When the stream stored it, in nanoseconds since the epoch. */
  timeNanos: bigint;
}

export type TrailEntry =
  | { ok: true; seq: number; subject: string; timeNanos: bigint; event: LedgerEvent }
  | { ok: false; seq: number; subject: string; timeNanos: bigint; raw: Uint8Array; error: string };

export interface TrailFilter {
  jid?: string;
  agent?: string;
  user?: string;
  /** Inclusive bounds on the stream time, microseconds since the epoch. */
  sinceMicros?: bigint;
  untilMicros?: bigint;
}

export interface TrailOptions extends TrailFilter {
  out?: string;
}

/** Why a valid event does not belong on its subject (core's rule, as the projector applies it), or undefined when it does. */
export function subjectMismatch(subject: string, event: LedgerEvent): string | undefined {
  const parsed = parseSubject(subject);
  if (parsed === undefined) return `subject ${JSON.stringify(subject)} is not a ledger event subject`;
  return eventSubjectMismatch(parsed, event);
}

/**
 * Decodes one message; a message that fails validation — or whose event does not belong on
 * its subject — becomes an entry with its error.
 */
export function decodeTrailMessage(m: TrailMessage): TrailEntry {
  const invalid = (error: string): TrailEntry => ({
    ok: false,
    seq: m.seq,
    subject: m.subject,
    timeNanos: m.timeNanos,
    raw: m.data,
    error,
  });
  let event: LedgerEvent;
  try {
    event = decodeEvent(m.data);
  } catch (err) {
    return invalid(err instanceof Error ? err.message : String(err));
  }
  const mismatch = subjectMismatch(m.subject, event);
  if (mismatch !== undefined) return invalid(`event does not match its subject: ${mismatch}`);
  return { ok: true, seq: m.seq, subject: m.subject, timeNanos: m.timeNanos, event };
}

/** The subjects to read: a job's and a runner job's subjects for `--jid`, else everything. */
export function trailSubjects(jid?: string): string[] {
  return jid === undefined ? [LEDGER_SUBJECTS] : [`ledger.job.${jid}.>`, `ledger.run.${jid}.>`];
}

/** Who and what an entry is about: the columns the filters and the table look at. */
export interface EntryFacts {
  type: string;
  jid?: string;
  agent?: string;
  user?: string;
  /** Agents a publication expects. */
  minions?: readonly string[];
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function entryFacts(e: TrailEntry): EntryFacts {
  if (!e.ok) {
    const s = parseSubject(e.subject);
    return {
      type: 'INVALID',
      jid: s !== undefined && 'jid' in s ? s.jid : undefined,
      agent: s !== undefined && 'agentId' in s ? s.agentId : undefined,
    };
  }
  const d = e.event.data as Record<string, unknown>;
  const type = e.event.type;
  const facts: EntryFacts = { type, jid: str(d.jid), user: str(d.user) };
  if (type === 'job.published') facts.minions = Array.isArray(d.minions) ? d.minions.filter((x) => typeof x === 'string') : [];
  else if (!type.startsWith('runner.')) facts.agent = str(d.id);
  return facts;
}

/**
 * Decides which entries the filters keep, in stream order. `--user` keeps the events that
 * carry that user (publications, runner events, returns) and every later event of a job
 * whose publication or return carried it (its proc events); `--agent` keeps the events of
 * that agent id and the publications that expect it. A message that failed validation is
 * kept when its subject names the jid/agent asked for, or a job of the user.
 */
export class TrailMatcher {
  private readonly userJids = new Set<string>();
  constructor(private readonly filter: TrailFilter) {}

  matches(e: TrailEntry): boolean {
    const f = this.filter;
    const t = timeMicros(e.timeNanos);
    if (f.sinceMicros !== undefined && t < f.sinceMicros) return false;
    if (f.untilMicros !== undefined && t > f.untilMicros) return false;
    const facts = entryFacts(e);
    if (f.jid !== undefined && facts.jid !== f.jid) return false;
    if (f.agent !== undefined && facts.agent !== f.agent && !(facts.minions ?? []).includes(f.agent)) return false;
    if (f.user !== undefined) {
      if (facts.user === f.user) {
        if (facts.jid !== undefined) this.userJids.add(facts.jid);
      } else if (facts.user !== undefined || facts.jid === undefined || !this.userJids.has(facts.jid)) {
        return false;
      }
    }
    return true;
  }
}

const timeMicros = (nanos: bigint) => nanos / 1000n;

/** A stream time as UTC ISO 8601 with microseconds: `2026-11-25T18:14:15.937764Z`. */
export function isoMicros(nanos: bigint): string {
  const micros = nanos / 1000n;
  const ms = Number(micros / 1000n);
  const base = new Date(ms).toISOString(); // …SS.mmmZ
  return `${base.slice(0, 23)}${String(micros % 1000n).padStart(3, '0')}Z`;
}

const isControl = (c: string): boolean => {
  const n = c.codePointAt(0) ?? 0;
  return n < 0x20 || (n >= 0x7f && n <= 0x9f);
};

/** `\n`, `\t`…, else `\u001b`. */
const escapeControl = (c: string): string => {
  const json = JSON.stringify(c).slice(1, -1);
  return json !== c ? json : `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`;
};

/** A cell of the table: control characters of untrusted text shown escaped, long text cut. */
export function cell(value: string | undefined, max = 80): string {
  if (value === undefined || value === '') return '-';
  const safe = [...value].map((c) => (isControl(c) ? escapeControl(c) : c)).join('');
  return safe.length > max ? `${safe.slice(0, max - 1)}…` : safe;
}

const compact = (v: unknown, max = 60): string => {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};

function signalName(n: unknown): string {
  if (typeof n !== 'number') return String(n);
  const name = Object.entries(os.constants.signals).find(([, v]) => v === n)?.[0];
  return name === undefined ? String(n) : `${n} (${name})`;
}

/** One line of what an event says, without its payload (a return's value is never shown). */
export function summary(e: TrailEntry): string {
  if (!e.ok) return e.error.split('\n').find((l) => l.trim() !== '') ?? e.error;
  const ev = e.event;
  const d = ev.data as Record<string, unknown>;
  const args = (a: unknown) => (Array.isArray(a) && a.length > 0 ? ` ${compact(a)}` : '');
  const retcode = typeof d.retcode === 'number' ? ` retcode ${d.retcode}` : '';
  switch (ev.type) {
    case 'job.published': {
      const data = ev.data;
      const missing = data.missing.length > 0 ? `, ${data.missing.length} missing` : '';
      return `${data.fun}${args(data.arg)} on ${data.tgt_type} ${compact(data.tgt, 40)}: ${data.minions.length} expected${missing}`;
    }
    case 'job.returned':
      return `${ev.data.fun} ${ev.data.success && ev.data.retcode === 0 ? 'ok' : 'FAILED'}${retcode}`;
    case 'proc.started':
      return `${ev.data.fun} pid ${ev.data.pid}`;
    case 'proc.signalled':
      return `${ev.data.fun} pid ${ev.data.pid} signal ${signalName(ev.data.signal)}`;
    case 'proc.ended':
      return `${ev.data.fun} pid ${ev.data.pid} ${ev.data.outcome}${retcode}${ev.data.signal === undefined ? '' : ` signal ${signalName(ev.data.signal)}`}`;
    case 'agent.started':
      return `started${ev.data.version === undefined ? '' : ` version ${ev.data.version}`}`;
    case 'runner.published':
      return `${ev.data.fun}${args(ev.data.fun_args)}`;
    case 'runner.returned':
      return `${ev.data.fun} ${ev.data.success ? 'ok' : 'FAILED'}${retcode}`;
    case 'publish.denied':
      return `DENIED ${ev.data.fun} on ${ev.data.tgt_type} ${compact(ev.data.tgt, 40)}: ${ev.data.error}`;
    default: {
      const returner = str(d.returner);
      const error = str(d.error);
      if (returner !== undefined) return `returner ${returner}${error === undefined ? '' : `: ${error}`}`;
      return ev.tag;
    }
  }
}

export const TABLE_COLUMNS = ['SEQ', 'TIME', 'TYPE', 'JID', 'AGENT', 'USER', 'SUMMARY'] as const;

/** The cells of an entry's table row, in TABLE_COLUMNS order. */
export function tableRow(e: TrailEntry): string[] {
  const f = entryFacts(e);
  return [String(e.seq), isoMicros(e.timeNanos), f.type, cell(f.jid, 40), cell(f.agent, 40), cell(f.user, 40), cell(summary(e), 120)];
}

/**
 * Prints rows aligned. Rows are printed a page at a time, so a long trail never sits in
 * memory; columns are as wide as the widest cell seen so far (they only grow).
 */
export class TableWriter {
  private widths: number[] = TABLE_COLUMNS.map((c) => c.length);
  private page: string[][] = [];
  private headerDone = false;
  constructor(
    private readonly write: (text: string) => void,
    private readonly pageSize = 1000,
  ) {}

  add(row: string[]): void {
    this.page.push(row);
    if (this.page.length >= this.pageSize) this.flush();
  }

  flush(): void {
    const rows = this.headerDone ? this.page : [[...TABLE_COLUMNS], ...this.page];
    this.headerDone = true;
    this.page = [];
    for (const r of rows) r.forEach((c, i) => (this.widths[i] = Math.max(this.widths[i] ?? 0, [...c].length)));
    const line = (r: string[]) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : i === 0 ? c.padStart(this.widths[i]!) : c + ' '.repeat(this.widths[i]! - [...c].length)))
        .join('  ');
    if (rows.length > 0) this.write(rows.map(line).join('\n') + '\n');
  }
}

/** The JSON line of an entry: the decoded event, or the error and the body as text. */
export function jsonLine(e: TrailEntry): string {
  const head = { seq: e.seq, time: isoMicros(e.timeNanos), subject: e.subject };
  if (e.ok) return JSON.stringify({ ...head, event: e.event });
  let raw: { raw: string } | { raw_base64: string };
  try {
    raw = { raw: new TextDecoder('utf-8', { fatal: true }).decode(e.raw) };
  } catch {
    raw = { raw_base64: Buffer.from(e.raw).toString('base64') };
  }
  return JSON.stringify({ ...head, invalid: true, error: e.error, ...raw });
}

/** Merges streams of messages that are each in sequence order into one in sequence order. */
export async function* mergeBySeq(sources: AsyncIterable<TrailMessage>[]): AsyncGenerator<TrailMessage> {
  const its = sources.map((s) => s[Symbol.asyncIterator]());
  try {
    const heads = await Promise.all(its.map((it) => it.next()));
    for (;;) {
      let best = -1;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i]!;
        if (!h.done && (best < 0 || h.value.seq < (heads[best]!.value as TrailMessage).seq)) best = i;
      }
      if (best < 0) return;
      yield heads[best]!.value as TrailMessage;
      heads[best] = await its[best]!.next();
    }
  } finally {
    await Promise.all(
      its.map(async (it) => {
        await it.return?.();
      }),
    );
  }
}

/**
 * The sequence of the first message on `filter` stored at or after `startTime` (RFC 3339):
 * the server finds it (`opt_start_time`) for a short-lived ordered consumer. `undefined` when
 * there is none.
 */
export async function firstSeqAt(js: JetStreamClient, stream: string, filter: string, startTime: string): Promise<number | undefined> {
  const consumer = await js.consumers.get(stream, { filter_subjects: filter, opt_start_time: startTime });
  try {
    if ((await consumer.info(true)).num_pending === 0) return undefined;
    return (await consumer.next({ expires: 5000 }))?.seq;
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}

/**
 * The messages on one filter subject, in order, from stream sequence `startSeq` up to `lastSeq`
 * (the stream's last sequence when the trail began). An ordered consumer: ephemeral, no acks,
 * recreated by the client after a gap from the last sequence it delivered (which is why it
 * starts at a sequence: a consumer created with a start time could not be recreated).
 */
export async function* readSubject(
  js: JetStreamClient,
  stream: string,
  filter: string,
  lastSeq: number,
  startSeq = 1,
): AsyncGenerator<TrailMessage> {
  if (lastSeq === 0 || startSeq > lastSeq) return;
  const consumer = await js.consumers.get(stream, { filter_subjects: filter, opt_start_seq: startSeq });
  try {
    if ((await consumer.info(true)).num_pending === 0) return;
    const messages = await consumer.consume({ max_messages: 512 });
    try {
      for await (const m of messages) {
        if (m.seq > lastSeq) break;
        yield { seq: m.seq, subject: m.subject, data: m.data, timeNanos: m.timestampNanos };
        if (m.seq >= lastSeq || m.info.pending === 0) break;
      }
    } finally {
      messages.stop();
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
}

/** Reads one filter subject from `startTime` (RFC 3339) when given, else from the first message. */
async function* readFrom(
  js: JetStreamClient,
  stream: string,
  filter: string,
  lastSeq: number,
  startTime?: string,
): AsyncGenerator<TrailMessage> {
  if (lastSeq === 0) return;
  const startSeq = startTime === undefined ? 1 : await firstSeqAt(js, stream, filter, startTime);
  if (startSeq !== undefined) yield* readSubject(js, stream, filter, lastSeq, startSeq);
}

/** Microseconds → the RFC 3339 time a consumer starts at (the millisecond it falls in). */
export function startTimeOf(micros: bigint): string {
  return new Date(Number(micros / 1000n)).toISOString();
}

export class AuditTrailError extends Error {
  override readonly name = 'AuditTrailError';
  readonly retryable: boolean;
  constructor(message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.retryable = options.retryable ?? false;
  }
}

/** NATS and the stream: the environment wins, else what `up` recorded (the trail needs no database). */
function natsEndpoint(env: NodeJS.ProcessEnv = process.env): { natsUrl: string; stream: string; auth: NatsAuth } {
  const state = readState(homeLayout(env));
  const natsUrl = env.JOBLEDGER_NATS_URL || state?.natsUrl;
  if (!natsUrl) {
    throw new NotRunningError(
      `jobledger is not running under ${homeLayout(env).root}: start it with \`npx jobledger up --detach\`, or set JOBLEDGER_NATS_URL`,
    );
  }
  const fromEnv = Boolean(env.JOBLEDGER_NATS_URL);
  const auth = {
    credsFile: env.JOBLEDGER_NATS_CREDS || (fromEnv ? undefined : state?.natsCredsFile),
    caFile: env.JOBLEDGER_NATS_CA || (fromEnv ? undefined : state?.natsCaFile),
  };
  return { natsUrl, stream: env.JOBLEDGER_STREAM || state?.stream || 'LEDGER', auth };
}

/** `jobledger audit trail`. Returns the exit code. */
export async function auditTrailCommand(opts: TrailOptions, io: Io = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const out = opts.out ?? 'table';
  if (out !== 'table' && out !== 'json') {
    io.stderr(`jobledger audit trail: unknown output '${out}' (table or json)\n`);
    return 2;
  }
  if (opts.sinceMicros !== undefined && opts.untilMicros !== undefined && opts.sinceMicros > opts.untilMicros) {
    io.stderr('jobledger audit trail: --since is after --until\n');
    return 2;
  }
  const { natsUrl, stream, auth } = natsEndpoint(env);
  let nc: NatsConnection;
  try {
    nc = await connectNats({ servers: natsUrl, name: 'jobledger-cli', timeout: 3000, auth });
  } catch (cause) {
    throw new MasterUnreachableError(MASTER_UNREACHABLE, { cause });
  }
  try {
    const jsm = await jetstreamManager(nc);
    let lastSeq: number;
    try {
      lastSeq = (await jsm.streams.info(stream)).state.last_seq;
    } catch (cause) {
      throw new AuditTrailError(`cannot read stream ${stream} at ${natsUrl}: ${(cause as Error).message}`, { cause, retryable: true });
    }
    const js = jetstream(nc);
    const start = opts.sinceMicros === undefined ? undefined : startTimeOf(opts.sinceMicros);
    const sources = trailSubjects(opts.jid).map((s) => readFrom(js, stream, s, lastSeq, start));
    const matcher = new TrailMatcher(opts);
    const table = new TableWriter(io.stdout);
    for await (const m of mergeBySeq(sources)) {
      if (opts.untilMicros !== undefined && timeMicros(m.timeNanos) > opts.untilMicros) break;
      const e = decodeTrailMessage(m);
      if (!matcher.matches(e)) continue;
      if (out === 'json') io.stdout(jsonLine(e) + '\n');
      else table.add(tableRow(e));
    }
    if (out === 'table') table.flush();
    return 0;
  } catch (err) {
    // Anything that ends the trail early (the stream unreadable, a consumer lost): one line, exit 2.
    if (err instanceof AuditTrailError) io.stderr(`${err.message}\n`);
    else io.stderr(`jobledger audit trail: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** A `--since`/`--until` value: the forms `jobs.list_jobs` reads (ISO, a jid, …), as UTC microseconds. */
export function timeArg(value: string): bigint {
  try {
    return parseDateTime(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function jidArg(value: string): string {
  if (!isJid(value) || /[\s.*>]/.test(value)) throw new InvalidArgumentError('not a jid');
  return value;
}

/** Adds `trail` to the `audit` command group. */
export function registerAuditTrail(audit: Command): Command {
  return audit
    .command('trail')
    .description('the events of the ledger as stored in the stream, in order (not the read models)')
    .addOption(new Option('--jid <jid>', "only this job's events (a job or a runner job)").argParser(jidArg))
    .option('--agent <id>', 'only the events of this agent id, and the jobs published to it')
    .option('--user <user>', 'only the events of jobs run by this user')
    .addOption(new Option('--since <time>', 'from this time on (ISO 8601, UTC unless a zone is given, or a jid)').argParser(timeArg))
    .addOption(new Option('--until <time>', 'up to this time (ISO 8601, UTC unless a zone is given, or a jid)').argParser(timeArg))
    .addOption(new Option('--out <format>', 'table (default) or json (one JSON object per line)').choices(['table', 'json']))
    .allowExcessArguments(false)
    .action(async (o: { jid?: string; agent?: string; user?: string; since?: bigint; until?: bigint; out?: string }) => {
      process.exitCode = await auditTrailCommand(
        { jid: o.jid, agent: o.agent, user: o.user, sinceMicros: o.since, untilMicros: o.until, out: o.out },
        processIo,
      );
    });
}
