/**
 * The returner contract, modelled on Salt's (`salt/returners/*.py`): a returner is a module
 * with at least `returner(ret)`; the master-job-cache role adds the rest. Every function but
 * `returner` is optional. Pure types: implementations live in `@jobledger/returners` (built-ins)
 * or in a user's plugin file.
 */

/** Salt's return load (`ret`): what a minion returns, `--return` and the master job cache see. */
export interface ReturnLoad {
  id: string;
  jid: string;
  fun: string;
  fun_args: unknown[];
  return: unknown;
  retcode?: number;
  success?: boolean;
  out?: string;
  /** `--return_config NAME` of the job. */
  ret_config?: string;
  /** `--return_kwargs` of the job. */
  ret_kwargs?: Record<string, unknown>;
  [key: string]: unknown;
}

/** One bus event as `event_return(events)` receives it. */
export interface ReturnerEvent {
  tag: string;
  data: Record<string, unknown>;
}

/** Salt's returner functions, camel-cased; each optional except `returner`. */
export interface Returner {
  /** `returner(ret)`: store one return. */
  returner(ret: ReturnLoad): Promise<void>;
  /** `save_load(jid, load, minions=None)`: store a job's publish load. */
  saveLoad?(jid: string, load: Record<string, unknown>, minions?: readonly string[]): Promise<void>;
  /** `get_load(jid)`: the publish load, `{}` when unknown. */
  getLoad?(jid: string): Promise<Record<string, unknown>>;
  /** `get_jid(jid)`: `{minion_id: return data}`. */
  getJid?(jid: string): Promise<Record<string, unknown>>;
  /** `get_jids()`: `{jid: formatted job}`. */
  getJids?(): Promise<Record<string, unknown>>;
  /** `get_jids_filter(count, filter_find_job=True)`: the last `count` jobs, oldest first. */
  getJidsFilter?(count: number, filterFindJob?: boolean): Promise<Record<string, unknown>[]>;
  /** `get_fun(fun)`: `{minion_id: last return of fun}`. */
  getFun?(fun: string): Promise<Record<string, unknown>>;
  /** `get_minions()`: ids seen in returns. */
  getMinions?(): Promise<string[]>;
  /** `event_return(events)`: store bus events. */
  eventReturn?(events: readonly ReturnerEvent[]): Promise<void>;
  /** `update_endtime(jid, time)`: the time the job's last return came (`job_cache_store_endtime`). */
  updateEndtime?(jid: string, time: string): Promise<void>;
  /** `get_endtime(jid)`: that time, or false. */
  getEndtime?(jid: string): Promise<string | false>;
  /** `clean_old_jobs()`: retention. */
  cleanOldJobs?(): Promise<void>;
  /** Releases connections, files, sockets. Not Salt's; called on stop. */
  close?(): Promise<void>;
}

/** The minimal logger a returner gets (pino's shape). */
export interface ReturnerLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Who runs the returner: an agent for `--return`, the projector for the master job cache. */
export type ReturnerRole = 'agent' | 'master';

/** What a returner module's `create` is given. */
export interface ReturnerContext {
  /** The returner's name as the job or configuration named it. */
  name: string;
  role: ReturnerRole;
  /** The agent id (role `agent`) or the master id (role `master`). */
  hostId: string;
  /** The configuration it reads its options from (minion.yaml for agents, master.yaml for the master). */
  config: Readonly<Record<string, unknown>>;
  /** `--return_config` of the job, if any. */
  retConfig?: string;
  /**
   * Not set by jobledger's registry, which shares one instance between jobs with different
   * `--return_kwargs`: read them from `ret.ret_kwargs` of each call (`getReturnerOptions`).
   */
  retKwargs?: Readonly<Record<string, unknown>>;
  logger: ReturnerLogger;
  /** Another returner by name, with the same `--return_config` (for `multi_returner`). */
  load(name: string): Promise<Returner>;
}

/** A returner module: built-in or a plugin file's default export. */
export interface ReturnerModule {
  /** Salt's `__virtualname__`. */
  name: string;
  /** One line for `sys.list_returners` docs. */
  description?: string;
  create(ctx: ReturnerContext): Returner | Promise<Returner>;
}

/** A returner that failed; `retryable` when the target may come back (a server down). */
export class ReturnerError extends Error {
  override readonly name = 'ReturnerError';
  readonly returner: string;
  readonly retryable: boolean;
  constructor(returner: string, message: string, options: { cause?: unknown; retryable: boolean }) {
    super(`The specified '${returner}' returner threw a stack trace: ${message}`, { cause: options.cause });
    this.returner = returner;
    this.retryable = options.retryable;
  }
}

/** Salt's message when a returner lacks a function a caller needs. */
export function notImplementedText(returner: string, fn: string): string {
  return `'${returner}.${fn}' returner function not implemented yet.`;
}
