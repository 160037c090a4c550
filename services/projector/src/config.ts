import path from 'node:path';
import { PROJECTOR_CONSUMER, type SignatureTrust } from '@jobledger/core';
import { ConfigError, intEnv, masterSignatureTrust, loadCommonConfig, masterId, requireEnv, type CommonConfig } from '@jobledger/runtime';
import { loadMasterReturnersConfig, type MasterReturnersConfig } from './master-config.js';
import { loadRetentionConfig, type RetentionConfig } from './retention.js';

export interface ProjectorConfig extends CommonConfig {
  /** PostgreSQL holding the read models (`DATABASE_URL`). */
  databaseUrl: string;
  /** `salt_events.master_id` (`JOBLEDGER_MASTER_ID`, default `<hostname>_master`). */
  masterId: string;
  /** Most messages applied in one transaction (`JOBLEDGER_PROJECTOR_BATCH`, default 500). */
  batch: number;
  /**
   * The projector's CPU nice value (`JOBLEDGER_PROJECTOR_NICE`, 0–19, default 10): on a busy
   * machine the agents and the CLI's `run` go first, the read models follow a moment later.
   */
  nice: number;
  /** Durable consumer name, also the checkpoint's name (`JOBLEDGER_PROJECTOR_CONSUMER`, default `projector`). */
  consumer: string;
  /** Written with the process id once the projector consumes (`JOBLEDGER_READY_FILE`). */
  readyFile?: string;
  /** Salt's job cleaning (`JOBLEDGER_KEEP_JOBS_SECONDS`, …); absent or 0 seconds: jobs are kept for ever. */
  retention?: RetentionConfig;
  /** `master_job_cache`, `event_return`… of the master configuration file, read once at start. */
  returners?: MasterReturnersConfig;
  /**
   * The master's event key (`<home>/pki/events.pub`): every event's signature is checked and what
   * fails is quarantined. Absent: a projector outside a master's home, which checks none.
   */
  signatureTrust?: SignatureTrust | undefined;
}

/** Valid as a JetStream durable name (no `.`, `*`, `>`, whitespace, path separators). */
const CONSUMER_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** The consumer's `max_ack_pending`: a fetch larger than that could never be filled. */
const MAX_BATCH = 20_000;

/** Reads the projector's settings from the environment; throws ConfigError naming the bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ProjectorConfig {
  const common = loadCommonConfig(env);
  const databaseUrl = requireEnv(env, 'DATABASE_URL');

  const batch = intEnv(env, 'JOBLEDGER_PROJECTOR_BATCH', 500);
  if (!Number.isInteger(batch) || batch < 1 || batch > MAX_BATCH) {
    throw new ConfigError(`JOBLEDGER_PROJECTOR_BATCH must be an integer from 1 to ${MAX_BATCH}, got '${env.JOBLEDGER_PROJECTOR_BATCH}'`);
  }

  const nice = intEnv(env, 'JOBLEDGER_PROJECTOR_NICE', 10);
  if (!Number.isInteger(nice) || nice < 0 || nice > 19) {
    throw new ConfigError(`JOBLEDGER_PROJECTOR_NICE must be an integer from 0 to 19, got '${env.JOBLEDGER_PROJECTOR_NICE}'`);
  }

  const consumer = env.JOBLEDGER_PROJECTOR_CONSUMER || PROJECTOR_CONSUMER;
  if (!CONSUMER_NAME.test(consumer)) {
    throw new ConfigError(`JOBLEDGER_PROJECTOR_CONSUMER must be 1-64 characters of A-Z a-z 0-9 _ -, got '${consumer}'`);
  }

  const returners = loadMasterReturnersConfig(common.home, env);
  // JOBLEDGER_MASTER_ID, else `id` of the master configuration file, else `<hostname>_master`.
  const master = masterId(env, returners.id);
  // salt_events.master_id is varchar(255); a longer id would fail every batch.
  if (master === '' || master.length > 255 || master.includes('\u0000')) {
    throw new ConfigError('JOBLEDGER_MASTER_ID must be 1-255 characters without NUL');
  }

  return {
    ...common,
    databaseUrl,
    masterId: master,
    batch,
    nice,
    consumer,
    readyFile: env.JOBLEDGER_READY_FILE ? path.resolve(env.JOBLEDGER_READY_FILE) : undefined,
    retention: loadRetentionConfig(env),
    returners,
    signatureTrust: masterSignatureTrust(path.join(common.home, 'pki')),
  };
}
