import {
  assertNever,
  decodeEvent,
  eventSubjectMismatch,
  jidToDate,
  KeyBook,
  parseSubject,
  runnerJobLoad,
  saltPublishLoad,
  type AgentStarted,
  type JobPublished,
  type JobReturned,
  type LedgerEvent,
  type ProcEnded,
  type ProcSignalled,
  type ProcStarted,
} from '@jobledger/core';

/**
 * The projections from ledger events to the read models, as SQL. Pure: a batch of stream
 * messages in, parameterised statements out; the projector runs them in one transaction
 * together with the checkpoint.
 *
 * Deterministic: every value written comes from the messages (and the master id), never from
 * the clock — the times Salt takes when its returner writes (`salt_returns.alter_time`,
 * `salt_events.alter_time`) and `dead_letters.received_at` are the time the stream stored the
 * message — so replaying the stream (`replay.ts`) gives the same rows, column for column.
 *
 * Every statement takes its rows as ONE JSON document (`$1::jsonb`, built with
 * `JSON.stringify`) and unpacks it with `jsonb_array_elements`, so
 * - a batch of any size is one statement per table, with a fixed text and no parameter limit;
 * - JSON values reach jsonb columns exactly as they are in the event (`"x"` stays a JSON
 *   string, `true` JSON true, `null` JSON null) — pg's own array/object conversion never runs.
 *
 * Applying the statements of a batch gives the same rows as applying its events one by one in
 * stream order: per-key upserts (`jobs`, `procs`, `agents`) are folded in stream order first and
 * merged into the stored row with rules that compose (counters add, `least`/`greatest`,
 * newer-non-null-wins, a process state that only moves forward).
 */

/** One stream message as the projector receives it. */
export interface RawMessage {
  /** Stream sequence. */
  seq: number;
  subject: string;
  data: Uint8Array;
  /** When the stream stored it. */
  time: Date;
  /** Its `Jobledger-Signer` and `Jobledger-Sig` headers (signed events). */
  signer?: string | undefined;
  signature?: string | undefined;
}

export type DecodedMessage =
  | { ok: true; seq: number; subject: string; time: Date; event: LedgerEvent }
  | { ok: false; seq: number; subject: string; time: Date; raw: Uint8Array; error: string; jid?: string };

export interface DeadLetter {
  seq: number;
  subject: string;
  /** When the stream stored it: `dead_letters.received_at`. */
  time: Date;
  raw: Uint8Array;
  error: string;
  jid?: string;
}

export interface SqlStatement {
  /** Which read model it writes, for logs and errors. */
  name: string;
  text: string;
  values: unknown[];
}

export interface ProjectionOptions {
  /** `salt_events.master_id`. */
  masterId: string;
}

export interface BatchPlan {
  statements: SqlStatement[];
  /** Valid events among the messages. */
  events: number;
  deadLetters: DeadLetter[];
}

/** Decodes and validates one message: an event, or the reason it is a dead letter. */
export function decodeMessage(m: RawMessage): DecodedMessage {
  const dead = (error: string, jid?: string): DecodedMessage => ({
    ok: false,
    seq: m.seq,
    subject: m.subject,
    time: m.time,
    raw: m.data,
    error,
    jid,
  });
  const parsed = parseSubject(m.subject);
  if (parsed === undefined) return dead(`subject ${JSON.stringify(m.subject)} is not a ledger event subject`);
  const jid = 'jid' in parsed ? parsed.jid : undefined;
  let event: LedgerEvent;
  try {
    event = decodeEvent(m.data);
  } catch (err) {
    return dead(err instanceof Error ? err.message : String(err), jid);
  }
  const mismatch = eventSubjectMismatch(parsed, event);
  if (mismatch !== undefined) return dead(`event does not match its subject: ${mismatch}`, jid);
  return { ok: true, seq: m.seq, subject: m.subject, time: m.time, event };
}

/** The jid an event is about, if any (for log context). */
export function eventJid(event: LedgerEvent): string | undefined {
  return 'jid' in event.data && typeof event.data.jid === 'string' ? event.data.jid : undefined;
}

/**
 * Text safe for a PostgreSQL text column or jsonb string: no NUL, no lone UTF-16 surrogate
 * (both are rejected by the server). Used for texts the projector writes itself (errors).
 */
export function safeText(s: string): string {
  return s.replaceAll('\u0000', '\uFFFD').replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/** Salt's publish load as stored in `jids` (`save_load` at publish time). */
export function publishLoad(data: JobPublished['data']): Record<string, unknown> {
  const load: Record<string, unknown> = { ...saltPublishLoad(data), minions: data.minions, missing: data.missing };
  if (data.metadata !== undefined) load.metadata = data.metadata;
  return load;
}

// ---------------------------------------------------------------------------------------------
// Per-key folds. Each `merge` follows exactly the rule of its SQL `ON CONFLICT DO UPDATE`, so
// folding a batch in stream order and then merging into the stored row equals applying every
// event on its own.

type ProcState = 'running' | 'signalled' | 'ended';
const PROC_RANK: Record<ProcState, number> = { running: 1, signalled: 2, ended: 3 };

export interface ProcRow {
  jid: string;
  id: string;
  fun: string;
  pid: number;
  state: ProcState;
  outcome: string | null;
  signal: number | null;
  retcode: number | null;
  started_at: Date | null;
  ended_at: Date | null;
}

function procRow(e: ProcStarted | ProcSignalled | ProcEnded, time: Date): ProcRow {
  const base = {
    jid: e.data.jid,
    id: e.data.id,
    fun: e.data.fun,
    pid: e.data.pid,
    outcome: null,
    signal: null,
    retcode: null,
    started_at: null,
    ended_at: null,
  };
  switch (e.type) {
    case 'proc.started':
      return { ...base, state: 'running', started_at: time };
    case 'proc.signalled':
      return { ...base, state: 'signalled', signal: e.data.signal };
    case 'proc.ended':
      return {
        ...base,
        state: 'ended',
        outcome: e.data.outcome,
        signal: e.data.signal ?? null,
        retcode: e.data.retcode ?? null,
        ended_at: time,
      };
    default:
      return assertNever(e);
  }
}

const least = (a: Date | null, b: Date | null): Date | null => (a === null ? b : b === null ? a : a <= b ? a : b);
const greatest = (a: Date | null, b: Date | null): Date | null => (a === null ? b : b === null ? a : a >= b ? a : b);

/** A process's state only moves forward (running → signalled → ended); later facts win. */
export function mergeProc(old: ProcRow, next: ProcRow): ProcRow {
  return {
    jid: old.jid,
    id: old.id,
    fun: next.fun,
    pid: next.pid,
    state: PROC_RANK[next.state] >= PROC_RANK[old.state] ? next.state : old.state,
    outcome: next.outcome ?? old.outcome,
    signal: next.signal ?? old.signal,
    retcode: next.retcode ?? old.retcode,
    started_at: least(old.started_at, next.started_at),
    ended_at: next.ended_at ?? old.ended_at,
  };
}

interface AgentRow {
  id: string;
  first_seen: Date;
  last_seen: Date;
  version: string | null;
  grains: Record<string, unknown> | null;
  starts: number;
}

function agentRow(e: AgentStarted, time: Date): AgentRow {
  return { id: e.data.id, first_seen: time, last_seen: time, version: e.data.version ?? null, grains: e.data.grains ?? null, starts: 1 };
}

function mergeAgent(old: AgentRow, next: AgentRow): AgentRow {
  return {
    id: old.id,
    first_seen: least(old.first_seen, next.first_seen) ?? next.first_seen,
    last_seen: greatest(old.last_seen, next.last_seen) ?? next.last_seen,
    version: next.version ?? old.version,
    grains: next.grains ?? old.grains,
    starts: old.starts + next.starts,
  };
}

/** What the returns of a batch add to one `jobs` row (and the placeholder if it has none). */
interface JobReturnsRow {
  jid: string;
  fun: string;
  arg: unknown[];
  user: string;
  start_time: Date;
  returned: number;
  failed: number;
  end_time: Date;
}

export function isFailedReturn(data: JobReturned['data']): boolean {
  return data.retcode !== 0 || !data.success;
}

// ---------------------------------------------------------------------------------------------
// SQL. Rows travel as one JSON array in $1; `e` is one element. `e->>'k'` is SQL NULL for a JSON
// null, but `e->'k'` is the jsonb value null: jsonb columns that may be NULL use nullif.

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

const SQL = {
  deadLetters: `INSERT INTO dead_letters (seq, subject, raw, error, received_at)
SELECT (e->>'seq')::bigint, e->>'subject', decode(e->>'raw', 'base64'), e->>'error', (e->>'time')::timestamptz
FROM jsonb_array_elements($1::jsonb) AS e
ON CONFLICT (seq) DO NOTHING`,

  saltEvents: `INSERT INTO salt_events (id, tag, data, alter_time, master_id)
SELECT (e->>'id')::bigint, e->>'tag', e->'data', (e->>'time')::timestamptz, $2
FROM jsonb_array_elements($1::jsonb) AS e
ON CONFLICT (id) DO NOTHING`,

  jids: `INSERT INTO jids (jid, load)
SELECT e->>'jid', e->'load'
FROM jsonb_array_elements($1::jsonb) AS e
ON CONFLICT (jid) DO NOTHING`,

  // A row made by a return that came first is a placeholder (no published_seq): fill it in.
  jobsPublished: `INSERT INTO jobs (jid, fun, arg, tgt, tgt_type, "user", metadata, minions, missing, expected, start_time, published_seq)
SELECT e->>'jid', e->>'fun', e->'arg', e->'tgt', e->>'tgt_type', e->>'user', nullif(e->'metadata', 'null'::jsonb), e->'minions', e->'missing',
       (e->>'expected')::integer, (e->>'start_time')::timestamptz, (e->>'published_seq')::bigint
FROM jsonb_array_elements($1::jsonb) AS e
ON CONFLICT (jid) DO UPDATE SET
  fun = EXCLUDED.fun, arg = EXCLUDED.arg, tgt = EXCLUDED.tgt, tgt_type = EXCLUDED.tgt_type, "user" = EXCLUDED."user",
  metadata = EXCLUDED.metadata, minions = EXCLUDED.minions, missing = EXCLUDED.missing, expected = EXCLUDED.expected,
  start_time = EXCLUDED.start_time, published_seq = EXCLUDED.published_seq
WHERE jobs.published_seq IS NULL`,

  // Rows are `{r: <the return's data as it is>, t: <stream time>}`: `return` and `full_ret` are
  // cut out of the same jsonb, so nothing is re-encoded. A missing `return` is stored as JSON null.
  saltReturns: `INSERT INTO salt_returns (fun, jid, "return", id, success, full_ret, alter_time)
SELECT r->>'fun', r->>'jid', coalesce(r->'return', 'null'::jsonb), r->>'id',
       CASE WHEN r->'success' = 'true'::jsonb THEN 'true' ELSE 'false' END, r, (e->>'t')::timestamptz
FROM jsonb_array_elements($1::jsonb) AS e, LATERAL (SELECT e->'r' AS r) AS x`,

  // Without a publication yet: a placeholder (tgt [], tgt_type list, expected 0) that the
  // publication fills in later.
  jobsReturned: `INSERT INTO jobs (jid, fun, arg, tgt, tgt_type, "user", metadata, minions, missing, expected, returned, failed, start_time, end_time, published_seq)
SELECT e->>'jid', e->>'fun', e->'arg', '[]'::jsonb, 'list', e->>'user', NULL, '[]'::jsonb, '[]'::jsonb, 0,
       (e->>'returned')::integer, (e->>'failed')::integer, (e->>'start_time')::timestamptz, (e->>'end_time')::timestamptz, NULL
FROM jsonb_array_elements($1::jsonb) AS e
ON CONFLICT (jid) DO UPDATE SET
  returned = jobs.returned + EXCLUDED.returned,
  failed = jobs.failed + EXCLUDED.failed,
  end_time = greatest(jobs.end_time, EXCLUDED.end_time)`,

  // A runner job (Salt's `store_job` for the master's own runs): stored once it has returned,
  // with the master id as its only target and minion.
  jobsRunner: `INSERT INTO jobs (jid, fun, arg, tgt, tgt_type, "user", metadata, minions, missing, expected, returned, failed, start_time, end_time, published_seq)
SELECT e->>'jid', e->>'fun', '[]'::jsonb, to_jsonb(e->>'master_id'), 'list', e->>'user', NULL, jsonb_build_array(e->>'master_id'), '[]'::jsonb, 1,
       1, (e->>'failed')::integer, (e->>'start_time')::timestamptz, (e->>'end_time')::timestamptz, (e->>'seq')::bigint
FROM jsonb_array_elements($1::jsonb) AS e
ON CONFLICT (jid) DO NOTHING`,

  procs: `INSERT INTO procs (jid, id, fun, pid, state, outcome, signal, retcode, started_at, ended_at)
SELECT e->>'jid', e->>'id', e->>'fun', (e->>'pid')::integer, e->>'state', e->>'outcome', (e->>'signal')::integer,
       (e->>'retcode')::integer, (e->>'started_at')::timestamptz, (e->>'ended_at')::timestamptz
FROM jsonb_array_elements($1::jsonb) AS e
ON CONFLICT (jid, id) DO UPDATE SET
  fun = EXCLUDED.fun,
  pid = EXCLUDED.pid,
  state = CASE WHEN array_position(ARRAY['running','signalled','ended'], EXCLUDED.state)
                    >= array_position(ARRAY['running','signalled','ended'], procs.state)
               THEN EXCLUDED.state ELSE procs.state END,
  outcome = coalesce(EXCLUDED.outcome, procs.outcome),
  signal = coalesce(EXCLUDED.signal, procs.signal),
  retcode = coalesce(EXCLUDED.retcode, procs.retcode),
  started_at = least(procs.started_at, EXCLUDED.started_at),
  ended_at = coalesce(EXCLUDED.ended_at, procs.ended_at)`,

  agents: `INSERT INTO agents (id, first_seen, last_seen, version, grains, starts)
SELECT e->>'id', (e->>'first_seen')::timestamptz, (e->>'last_seen')::timestamptz, e->>'version',
       nullif(e->'grains', 'null'::jsonb), (e->>'starts')::integer
FROM jsonb_array_elements($1::jsonb) AS e
ON CONFLICT (id) DO UPDATE SET
  first_seen = least(agents.first_seen, EXCLUDED.first_seen),
  last_seen = greatest(agents.last_seen, EXCLUDED.last_seen),
  version = coalesce(EXCLUDED.version, agents.version),
  grains = coalesce(EXCLUDED.grains, agents.grains),
  starts = agents.starts + EXCLUDED.starts`,
  // Rejecting or deleting another key than the accepted one leaves the accepted one (core's KeyBook).
  agentKeys: `INSERT INTO agent_keys (id, public_key, state, seq, changed_at)
SELECT e->>'id', e->>'public_key', e->>'state', (e->>'seq')::bigint, (e->>'changed_at')::timestamptz
FROM jsonb_array_elements($1::jsonb) AS e
ON CONFLICT (id) DO UPDATE SET
  public_key = EXCLUDED.public_key, state = EXCLUDED.state, seq = EXCLUDED.seq, changed_at = EXCLUDED.changed_at
WHERE agent_keys.seq < EXCLUDED.seq
  AND NOT (agent_keys.state = 'accepted' AND EXCLUDED.state <> 'accepted' AND agent_keys.public_key <> EXCLUDED.public_key)`,
} as const;

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * Rows per statement are cut at about this many characters of JSON, so a batch of large
 * events stays far below V8's string limit and PostgreSQL's 1 GB parameter / 256 MB jsonb
 * limits. Every key of an upsert occurs once per batch, so splitting never reorders a key.
 */
const MAX_STATEMENT_JSON = 8 * 1024 * 1024;

function statementsFor(name: string, text: string, rows: readonly unknown[], extra: readonly unknown[] = []): SqlStatement[] {
  const out: SqlStatement[] = [];
  let parts: string[] = [];
  let size = 0;
  const flush = () => {
    if (parts.length > 0) out.push({ name, text, values: [`[${parts.join(',')}]`, ...extra] });
    parts = [];
    size = 0;
  };
  for (const row of rows) {
    const json = JSON.stringify(row);
    if (parts.length > 0 && size + json.length > MAX_STATEMENT_JSON) flush();
    parts.push(json);
    size += json.length + 1;
  }
  flush();
  return out;
}

const deadLetterRows = (letters: readonly DeadLetter[]) =>
  letters.map((d) => ({
    seq: d.seq,
    subject: safeText(d.subject),
    time: d.time.toISOString(),
    raw: base64(d.raw),
    error: safeText(d.error),
  }));

/** The statements recording dead letters (raw bytes and error text). */
export function deadLetterStatements(letters: readonly DeadLetter[]): SqlStatement[] {
  return statementsFor('dead_letters', SQL.deadLetters, deadLetterRows(letters));
}

/**
 * The rows of a batch that carry the time the stream stored their message, as planBatch writes
 * them: `salt_events` (id = seq), `dead_letters` (seq) and `salt_returns` (`r` is the row's
 * `full_ret`, a job return's data or a runner job's load). Used to stamp rows written by a
 * projector that took the clock instead (see projector.ts's backfillChain).
 */
export interface StreamTimeRows {
  saltEvents: { id: number; t: string }[];
  deadLetters: { seq: number; t: string }[];
  saltReturns: { r: unknown; t: string }[];
}

export function streamTimeRows(messages: readonly RawMessage[], opts: ProjectionOptions): StreamTimeRows {
  const out: StreamTimeRows = { saltEvents: [], deadLetters: [], saltReturns: [] };
  for (const m of messages) {
    const d = decodeMessage(m);
    const t = d.time.toISOString();
    if (!d.ok) {
      out.deadLetters.push({ seq: d.seq, t });
      continue;
    }
    out.saltEvents.push({ id: d.seq, t });
    if (d.event.type === 'job.returned') out.saltReturns.push({ r: d.event.data, t });
    else if (d.event.type === 'runner.returned') out.saltReturns.push({ r: runnerJobLoad(opts.masterId, d.event.data), t });
  }
  return out;
}

/**
 * The SQL effects of a batch of messages, which must be in stream order and not yet applied.
 * Invalid messages become dead letters; valid ones write every read model they touch.
 */
export function planBatch(messages: readonly (RawMessage | DecodedMessage)[], opts: ProjectionOptions): BatchPlan {
  const deadLetters: DeadLetter[] = [];
  const saltEvents: { id: number; tag: string; data: unknown; time: string }[] = [];
  const jids = new Map<string, { jid: string; load: unknown }>();
  const jobsPublished = new Map<string, Record<string, unknown>>();
  const saltReturns: { r: JobReturned['data']; t: string }[] = [];
  const jobsReturned = new Map<string, JobReturnsRow>();
  const procs = new Map<string, ProcRow>();
  const agents = new Map<string, AgentRow>();
  const keys = new KeyBook();
  const keyTimes = new Map<string, string>();
  const runnerReturns: { r: Record<string, unknown>; t: string }[] = [];
  const runnerJobs = new Map<string, Record<string, unknown>>();
  let events = 0;

  for (const m of messages) {
    const d = 'ok' in m ? m : decodeMessage(m);
    if (!d.ok) {
      deadLetters.push({ seq: d.seq, subject: d.subject, time: d.time, raw: d.raw, error: d.error, jid: d.jid });
      continue;
    }
    events++;
    const { event, time } = d;
    saltEvents.push({ id: d.seq, tag: event.tag, data: event.data, time: time.toISOString() });

    switch (event.type) {
      case 'job.published': {
        const data = event.data;
        // The first publication of a jid wins, as ON CONFLICT DO NOTHING / WHERE published_seq IS NULL do.
        if (!jids.has(data.jid)) jids.set(data.jid, { jid: data.jid, load: publishLoad(data) });
        if (!jobsPublished.has(data.jid)) {
          jobsPublished.set(data.jid, {
            jid: data.jid,
            fun: data.fun,
            arg: data.arg,
            tgt: data.tgt,
            tgt_type: data.tgt_type,
            user: data.user,
            metadata: data.metadata,
            minions: data.minions,
            missing: data.missing,
            expected: data.minions.length + data.missing.length,
            start_time: jidToDate(data.jid).toISOString(),
            published_seq: d.seq,
          });
        }
        break;
      }
      case 'job.returned': {
        const data = event.data;
        saltReturns.push({ r: data, t: time.toISOString() });
        const failed = isFailedReturn(data) ? 1 : 0;
        const agg = jobsReturned.get(data.jid);
        if (agg === undefined) {
          jobsReturned.set(data.jid, {
            jid: data.jid,
            fun: data.fun,
            arg: data.fun_args,
            user: data.user,
            start_time: jidToDate(data.jid),
            returned: 1,
            failed,
            end_time: time,
          });
        } else {
          agg.returned += 1;
          agg.failed += failed;
          agg.end_time = greatest(agg.end_time, time) ?? time;
        }
        break;
      }
      case 'proc.started':
      case 'proc.signalled':
      case 'proc.ended': {
        const row = procRow(event, time);
        const key = JSON.stringify([row.jid, row.id]);
        const old = procs.get(key);
        procs.set(key, old === undefined ? row : mergeProc(old, row));
        break;
      }
      case 'agent.started': {
        const row = agentRow(event, time);
        const old = agents.get(row.id);
        agents.set(row.id, old === undefined ? row : mergeAgent(old, row));
        break;
      }
      case 'runner.published':
        // Salt caches a runner job when it has returned; its start is in salt_events.
        break;
      case 'runner.returned': {
        // Salt's runner job in the job cache: `lookup_jid <jid>` gives {<master id>: <runner dict>}.
        const data = event.data;
        const load = runnerJobLoad(opts.masterId, data);
        if (!jids.has(data.jid)) jids.set(data.jid, { jid: data.jid, load });
        runnerReturns.push({ r: load, t: time.toISOString() });
        if (!runnerJobs.has(data.jid)) {
          runnerJobs.set(data.jid, {
            jid: data.jid,
            fun: data.fun,
            user: data.user,
            master_id: opts.masterId,
            failed: data.success && (data.retcode ?? 0) === 0 ? 0 : 1,
            start_time: jidToDate(data.jid).toISOString(),
            end_time: time.toISOString(),
            seq: d.seq,
          });
        }
        break;
      }
      case 'returner.failed':
        // A `--return` returner failed on an agent: only in salt_events (Salt only logs it).
        break;
      case 'publish.denied':
        // A publish refused by the ACL: only in salt_events (Salt only logs it).
        break;
      case 'key.accepted':
      case 'key.rejected':
      case 'key.deleted':
        keys.apply(event, d.seq);
        if (keys.get(event.data.id)?.seq === d.seq) keyTimes.set(event.data.id, time.toISOString());
        break;
      default:
        assertNever(event);
    }
  }

  const statements: SqlStatement[] = [];
  const add = (name: string, text: string, rows: readonly unknown[], ...extra: unknown[]) => {
    statements.push(...statementsFor(name, text, rows, extra));
  };
  statements.push(...deadLetterStatements(deadLetters));
  add('salt_events', SQL.saltEvents, saltEvents, opts.masterId);
  add('jids', SQL.jids, [...jids.values()]);
  add('jobs', SQL.jobsPublished, [...jobsPublished.values()]);
  add('salt_returns', SQL.saltReturns, saltReturns);
  add('salt_returns', SQL.saltReturns, runnerReturns);
  add('jobs', SQL.jobsRunner, [...runnerJobs.values()]);
  add(
    'jobs',
    SQL.jobsReturned,
    [...jobsReturned.values()].map((r) => ({ ...r, start_time: iso(r.start_time), end_time: iso(r.end_time) })),
  );
  add(
    'procs',
    SQL.procs,
    [...procs.values()].map((r) => ({ ...r, started_at: iso(r.started_at), ended_at: iso(r.ended_at) })),
  );
  add(
    'agents',
    SQL.agents,
    [...agents.values()].map((r) => ({ ...r, first_seen: iso(r.first_seen), last_seen: iso(r.last_seen) })),
  );
  add(
    'agent_keys',
    SQL.agentKeys,
    [...keys.entries()].map(([id, k]) => ({ id, public_key: k.publicKey, state: k.state, seq: k.seq, changed_at: keyTimes.get(id) })),
  );
  return { statements, events, deadLetters };
}
