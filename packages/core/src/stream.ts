import { LEDGER_SUBJECTS, subjects } from './subjects.js';

/**
 * The ledger's JetStream stream and consumers, as plain objects in the shape of the
 * JetStream API (so core stays free of the client library). Services pass them to
 * `jsm.streams.add` / `jsm.consumers.add`. Only nats-server 2.9 features are used.
 */

export const DEFAULT_STREAM = 'LEDGER';

export interface LedgerStreamOptions {
  name?: string;
  /** Replicas: 1 on one node, 3 in a cluster. */
  replicas?: number;
  /** Window within which a repeated `Nats-Msg-Id` is stored once, in nanoseconds. */
  duplicateWindowNs?: number;
}

export function ledgerStreamConfig(opts: LedgerStreamOptions = {}) {
  return {
    name: opts.name ?? DEFAULT_STREAM,
    subjects: [LEDGER_SUBJECTS],
    storage: 'file' as const,
    retention: 'limits' as const,
    num_replicas: opts.replicas ?? 1,
    // Append-only: the history is the source of truth.
    deny_delete: true,
    deny_purge: true,
    allow_rollup_hdrs: false,
    duplicate_window: opts.duplicateWindowNs ?? 10 * 60 * 1_000_000_000,
    max_msgs_per_subject: -1,
    discard: 'old' as const,
    allow_direct: true,
  };
}

/** Durable name of the projector's consumer over the whole stream. */
export const PROJECTOR_CONSUMER = 'projector';

/**
 * The projector's durable consumer. Acks are cumulative (`all`): a committed batch moves the
 * checkpoint past every sequence up to its last, so one ack of its highest message says what
 * the checkpoint says (a consumer made before, with explicit acks, is acked message by message).
 */
export function projectorConsumerConfig(name = PROJECTOR_CONSUMER) {
  return {
    durable_name: name,
    ack_policy: 'all' as const,
    deliver_policy: 'all' as const,
    filter_subject: LEDGER_SUBJECTS,
    max_ack_pending: 20_000,
    ack_wait: 30 * 1_000_000_000,
    max_deliver: -1,
  };
}

/**
 * One durable consumer per agent process, over job publications only, named after its
 * group of agent ids. `startSeq` is where a newly created consumer begins.
 */
export function agentConsumerConfig(name: string, startSeq: number) {
  return {
    durable_name: name,
    ack_policy: 'explicit' as const,
    deliver_policy: 'by_start_sequence' as const,
    opt_start_seq: Math.max(1, startSeq),
    filter_subject: subjects.allJobNew,
    max_ack_pending: 1_000,
    ack_wait: 30 * 1_000_000_000,
    max_deliver: -1,
  };
}

/**
 * KV bucket of agent presence: key = encoded agent id, value = AgentPresence JSON. Written when
 * an agent process starts (the dispatcher watches it, so it changes only when membership does).
 */
export const AGENTS_BUCKET = 'ledger_agents';

/**
 * KV bucket of each id's progress: key = encoded agent id, value = the last stream sequence of a
 * job publication the id has seen and handled (decimal). Written every few seconds while jobs
 * arrive, apart from presence so that nobody watching presence receives every advance.
 */
export const PROGRESS_BUCKET = 'ledger_agent_progress';

export interface AgentPresence {
  id: string;
  /** Agent process group that hosts the id. */
  group: string;
  /**
   * Where the id stood when its process started (PROGRESS_BUCKET has where it stands now); read
   * only for an id without a progress entry, as agents before that bucket kept it here alone.
   */
  lastSeq?: number;
  startedAt: string;
  grains: Record<string, unknown>;
}

/**
 * Object store bucket of returns too large for one stream message: the `job.returned` event
 * then carries `return: null` and a `return_object` naming the object that holds the return.
 */
export const RETURNS_BUCKET = 'ledger_returns';
