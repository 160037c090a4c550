import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  customType,
  index,
  integer,
  jsonb,
  pgSequence,
  pgTable,
  primaryKey,
  text,
  timestamp,
  varchar,
} from 'drizzle-orm/pg-core';

/**
 * Read models. `jids`, `salt_returns` and `salt_events` have the columns, types and indexes
 * of Salt's pgjsonb returner, so Salt's own queries run unchanged. The rest are jobledger's.
 */

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({ dataType: () => 'bytea' });

export const jids = pgTable(
  'jids',
  {
    jid: varchar('jid', { length: 255 }).primaryKey(),
    load: jsonb('load').notNull(),
  },
  (t) => [index('idx_jids_jsonb').using('gin', t.load).with({ fastupdate: 'on' })],
);

export const saltReturns = pgTable(
  'salt_returns',
  {
    fun: varchar('fun', { length: 50 }).notNull(),
    jid: varchar('jid', { length: 255 }).notNull(),
    return: jsonb('return').notNull(),
    id: varchar('id', { length: 255 }).notNull(),
    success: varchar('success', { length: 10 }).notNull(),
    full_ret: jsonb('full_ret').notNull(),
    alter_time: timestamp('alter_time', { withTimezone: true }).defaultNow(),
  },
  (t) => [
    index('idx_salt_returns_id').on(t.id),
    index('idx_salt_returns_jid').on(t.jid),
    index('idx_salt_returns_fun').on(t.fun),
    index('idx_salt_returns_return').using('gin', t.return).with({ fastupdate: 'on' }),
    index('idx_salt_returns_full_ret').using('gin', t.full_ret).with({ fastupdate: 'on' }),
  ],
);

export const seqSaltEventsId = pgSequence('seq_salt_events_id');

/** `id` is the event's stream sequence, so a replay gives the same ids. */
export const saltEvents = pgTable(
  'salt_events',
  {
    id: bigint('id', { mode: 'number' })
      .notNull()
      .unique()
      .default(sql`nextval('seq_salt_events_id')`),
    tag: varchar('tag', { length: 255 }).notNull(),
    data: jsonb('data').notNull(),
    alter_time: timestamp('alter_time', { withTimezone: true }).defaultNow(),
    master_id: varchar('master_id', { length: 255 }).notNull(),
  },
  (t) => [index('idx_salt_events_tag').on(t.tag), index('idx_salt_events_data').using('gin', t.data).with({ fastupdate: 'on' })],
);

/** One row per jid: what `list_jobs` and `lookup_jid` read without scanning returns. */
export const jobs = pgTable(
  'jobs',
  {
    jid: varchar('jid', { length: 255 }).primaryKey(),
    fun: text('fun').notNull(),
    arg: jsonb('arg').notNull(),
    tgt: jsonb('tgt').notNull(),
    tgt_type: text('tgt_type').notNull(),
    user: text('user').notNull(),
    metadata: jsonb('metadata'),
    minions: jsonb('minions').notNull(),
    missing: jsonb('missing').notNull(),
    expected: integer('expected').notNull(),
    returned: integer('returned').notNull().default(0),
    failed: integer('failed').notNull().default(0),
    start_time: timestamp('start_time', { withTimezone: true }).notNull(),
    end_time: timestamp('end_time', { withTimezone: true }),
    published_seq: bigint('published_seq', { mode: 'number' }),
  },
  (t) => [
    index('idx_jobs_start_time').on(t.start_time.desc(), t.jid.desc()),
    index('idx_jobs_fun').on(t.fun),
    index('idx_jobs_fun_pattern').using('btree', t.fun.op('text_pattern_ops')),
    index('idx_jobs_user').on(t.user),
    index('idx_jobs_tgt').using('gin', t.tgt),
    index('idx_jobs_metadata').using('gin', t.metadata),
  ],
);

/** Processes per agent and jid: started, signalled, ended (returned, signalled or lost). */
export const procs = pgTable(
  'procs',
  {
    jid: varchar('jid', { length: 255 }).notNull(),
    id: varchar('id', { length: 255 }).notNull(),
    fun: text('fun').notNull(),
    pid: integer('pid').notNull(),
    state: text('state').notNull(),
    outcome: text('outcome'),
    signal: integer('signal'),
    retcode: integer('retcode'),
    started_at: timestamp('started_at', { withTimezone: true }),
    ended_at: timestamp('ended_at', { withTimezone: true }),
  },
  (t) => [primaryKey({ columns: [t.jid, t.id] }), index('idx_procs_state').on(t.state), index('idx_procs_id_state').on(t.id, t.state)],
);

/** Every agent id seen on the stream. */
export const agents = pgTable('agents', {
  id: varchar('id', { length: 255 }).primaryKey(),
  first_seen: timestamp('first_seen', { withTimezone: true }).notNull(),
  last_seen: timestamp('last_seen', { withTimezone: true }).notNull(),
  version: text('version'),
  grains: jsonb('grains'),
  starts: integer('starts').notNull().default(1),
});

/**
 * Each id's key as the ledger's key events left it (`key.accepted`, `key.rejected`,
 * `key.deleted`): the key an agent's events must be signed with. The projector loads it when it
 * starts and keeps it in the same transaction as the rest; `seq` is the key event's sequence.
 */
export const agentKeys = pgTable('agent_keys', {
  id: varchar('id', { length: 255 }).primaryKey(),
  public_key: text('public_key').notNull(),
  state: text('state').notNull(),
  seq: bigint('seq', { mode: 'number' }).notNull(),
  changed_at: timestamp('changed_at', { withTimezone: true }).notNull(),
});

/**
 * Last applied stream sequence per projection, written in the same transaction as its rows, with
 * the ledger hash chain (`ledger-chain.ts`) after that sequence; `chain` is NULL while unknown (a
 * checkpoint from before the chain existed).
 */
export const projectorCheckpoint = pgTable('projector_checkpoint', {
  name: text('name').primaryKey(),
  last_seq: bigint('last_seq', { mode: 'number' }).notNull(),
  updated_at: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  chain: text('chain'),
  /**
   * Set when the chain was computed for a checkpoint written by a version before it (the
   * projector's start, `backfillChain`): the sequence up to which the rows come from that
   * version. Retention removals before it were not logged, so a rebuild cannot reproduce them.
   */
  backfilled_seq: bigint('backfilled_seq', { mode: 'number' }),
});

/** The hash chain value after the last message of every committed batch (`jobledger audit verify` checks them). */
export const projectorChain = pgTable(
  'projector_chain',
  {
    name: text('name').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    hash: text('hash').notNull(),
  },
  (t) => [primaryKey({ columns: [t.name, t.seq] })],
);

/**
 * What each retention transaction removed, written in that transaction: the checkpoint it ran
 * at (`seq`, read under the checkpoint lock), the jids whose rows went and the ids of the
 * `salt_events` rows that went. A rebuild applies the same removals at the same point of the
 * stream, so its rows equal the live ones.
 */
export const retentionLog = pgTable(
  'retention_log',
  {
    name: text('name').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    part: integer('part').notNull(),
    archived: boolean('archived').notNull(),
    jids: text('jids').array().notNull(),
    event_ids: bigint('event_ids', { mode: 'number' }).array().notNull(),
    removed_at: timestamp('removed_at', { withTimezone: true }).notNull().defaultNow(),
    /** The retention in force (`keep_jobs_seconds`), so an audit judges each removal by its own. */
    keep_jobs_seconds: integer('keep_jobs_seconds'),
  },
  (t) => [primaryKey({ columns: [t.name, t.seq, t.part] })],
);

/** Messages that failed validation, kept with their raw bytes. */
export const deadLetters = pgTable('dead_letters', {
  seq: bigint('seq', { mode: 'number' }).primaryKey(),
  subject: text('subject').notNull(),
  raw: bytea('raw').notNull(),
  error: text('error').notNull(),
  received_at: timestamp('received_at', { withTimezone: true }).notNull().defaultNow(),
});

/*
 * Archive twins for retention (`archive_jobs`): the same columns, as Salt's
 * `CREATE TABLE <t>_archive (LIKE <t>)` gives — no keys, defaults or sequence — plus an index
 * on the jid so archived jobs can still be looked up.
 */
export const jidsArchive = pgTable(
  'jids_archive',
  { jid: varchar('jid', { length: 255 }).notNull(), load: jsonb('load').notNull() },
  (t) => [index('idx_jids_archive_jid').on(t.jid)],
);

export const saltReturnsArchive = pgTable(
  'salt_returns_archive',
  {
    fun: varchar('fun', { length: 50 }).notNull(),
    jid: varchar('jid', { length: 255 }).notNull(),
    return: jsonb('return').notNull(),
    id: varchar('id', { length: 255 }).notNull(),
    success: varchar('success', { length: 10 }).notNull(),
    full_ret: jsonb('full_ret').notNull(),
    alter_time: timestamp('alter_time', { withTimezone: true }),
  },
  (t) => [index('idx_salt_returns_archive_jid').on(t.jid)],
);

export const saltEventsArchive = pgTable('salt_events_archive', {
  id: bigint('id', { mode: 'number' }).notNull(),
  tag: varchar('tag', { length: 255 }).notNull(),
  data: jsonb('data').notNull(),
  alter_time: timestamp('alter_time', { withTimezone: true }),
  master_id: varchar('master_id', { length: 255 }).notNull(),
});

export const jobsArchive = pgTable(
  'jobs_archive',
  {
    jid: varchar('jid', { length: 255 }).notNull(),
    fun: text('fun').notNull(),
    arg: jsonb('arg').notNull(),
    tgt: jsonb('tgt').notNull(),
    tgt_type: text('tgt_type').notNull(),
    user: text('user').notNull(),
    metadata: jsonb('metadata'),
    minions: jsonb('minions').notNull(),
    missing: jsonb('missing').notNull(),
    expected: integer('expected').notNull(),
    returned: integer('returned').notNull(),
    failed: integer('failed').notNull(),
    start_time: timestamp('start_time', { withTimezone: true }).notNull(),
    end_time: timestamp('end_time', { withTimezone: true }),
    published_seq: bigint('published_seq', { mode: 'number' }),
  },
  (t) => [index('idx_jobs_archive_jid').on(t.jid)],
);
