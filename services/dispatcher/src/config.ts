import path from 'node:path';
import { PROJECTOR_CONSUMER } from '@jobledger/core';
import { configFilePath, configuredMasterId, loadCommonConfig, type CommonConfig } from '@jobledger/runtime';

export interface DispatcherConfig extends CommonConfig {
  /** Salt's master id (`JOBLEDGER_MASTER_ID`, default `<hostname>_master`). */
  masterId: string;
  /** Written with the process id once the dispatcher serves requests (`JOBLEDGER_READY_FILE`). */
  readyFile?: string;
  /** PostgreSQL of the read models, for runner functions (`DATABASE_URL`; without it they fail). */
  databaseUrl?: string;
  /** The projector's checkpoint name, to read the job cache only once it has caught up (`JOBLEDGER_PROJECTOR_CONSUMER`, default `projector`). */
  projectorConsumer: string;
  /** Salt's master configuration file, for `nodegroups:` (`JOBLEDGER_MASTER_CONFIG`, default `$JOBLEDGER_HOME/master.yaml`). */
  masterConfigFile: string;
}

/** Reads the dispatcher's settings from the environment; throws ConfigError naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): DispatcherConfig {
  const common = loadCommonConfig(env);
  const readyFile = env.JOBLEDGER_READY_FILE;
  const masterConfigFile = configFilePath('master', common.home, env);
  return {
    ...common,
    // A master.yaml that does not parse is reported when its nodegroups are read.
    masterId: configuredMasterId(env),
    readyFile: readyFile ? path.resolve(readyFile) : undefined,
    databaseUrl: env.DATABASE_URL || undefined,
    projectorConsumer: env.JOBLEDGER_PROJECTOR_CONSUMER || PROJECTOR_CONSUMER,
    masterConfigFile,
  };
}
