import path from 'node:path';
import { loadCommonConfig, masterId, type CommonConfig } from '@jobledger/runtime';

export interface DispatcherConfig extends CommonConfig {
  /** Salt's master id (`JOBLEDGER_MASTER_ID`, default `<hostname>_master`). */
  masterId: string;
  /** Written with the process id once the dispatcher serves requests (`JOBLEDGER_READY_FILE`). */
  readyFile?: string;
}

/** Reads the dispatcher's settings from the environment; throws ConfigError naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): DispatcherConfig {
  const common = loadCommonConfig(env);
  const readyFile = env.JOBLEDGER_READY_FILE;
  return {
    ...common,
    masterId: masterId(env),
    readyFile: readyFile ? path.resolve(readyFile) : undefined,
  };
}
