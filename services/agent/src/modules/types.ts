import type { Returner } from '@jobledger/core';
import type { BoundArgs, Signature } from './signature.js';

export type Grains = Record<string, unknown>;

/** What a running function may use. */
export interface ExecContext {
  /** The agent id the job runs as. */
  id: string;
  jid: string;
  grains: Grains;
  /**
   * Aborted when the job is cancelled (agent stopping, start not recorded) or killed by
   * `saltutil.signal_job` (the reason is then a ProcessSignalledError carrying the signal).
   */
  signal: AbortSignal;
  /** Shell functions call this with their child's pid as soon as it is spawned. */
  spawned(pid: number): void;
  /** Every function name the agent offers (for `sys.*`). */
  functionNames(): string[];
  /** The function the agent offers under `fun` (plugins included); the built-ins when absent. */
  lookupFunction?: (fun: string) => ExecFunction | undefined;
  /** The returners the agent can call (for `sys.list_returners`); none when absent. */
  returnerNames?: () => Promise<string[]>;
  /** A returner of this id by name (for the `ret` module); throws for an unknown one. */
  returner?: (name: string) => Promise<Returner>;
  /** The jobs of this id (Salt's proc directory), for `saltutil.*`. */
  jobs: JobControl;
}

/**
 * Salt's proc dict: the publication the job runs (`fun, arg, tgt, jid, ret, tgt_type, user`, plus
 * `master_id` / `metadata` when published) and the `pid` running it.
 */
export interface ProcRecord {
  pid: number;
  fun: string;
  arg: unknown[];
  tgt: string | string[];
  jid: string;
  ret: string;
  tgt_type: string;
  user: string;
  master_id?: unknown;
  metadata?: unknown;
}

/** What sending a signal to a job did. */
export type SignalResult =
  /** Sent to the job's processes (or, for a job running inside the agent, it was ended). */
  | { kind: 'sent'; pid: number }
  /** The job's process was gone when the signal was sent: its proc file is removed. */
  | { kind: 'not-running' }
  /** No running job has that jid. */
  | { kind: 'unknown' };

/** The running jobs of one agent id, as `saltutil` sees them. */
export interface JobControl {
  /**
   * Proc records of the id's live jobs, by jid. A proc file whose job is gone is removed on the
   * way (and its job recorded as lost).
   */
  running(): Promise<ProcRecord[]>;
  /** The live job's proc record; undefined when no such job runs (a stale proc file is cleaned up). */
  find(jid: string): Promise<ProcRecord | undefined>;
  /** Sends `signal` (a number) to the job's whole process tree, and records it. */
  signal(jid: string, signal: number): Promise<SignalResult>;
}

/** A function's result: Salt's `return`, and the `retcode` it put in `__context__` (default 0). */
export interface ExecResult {
  return: unknown;
  retcode?: number;
}

export interface ExecFunction {
  /** `shell`: runs in a child process (its pid is the job's pid); `inproc`: runs in the agent. */
  kind: 'shell' | 'inproc';
  signature: Signature;
  doc: string;
  run(args: BoundArgs, ctx: ExecContext): Promise<ExecResult>;
}

/** One Salt execution module: function name (without the module) → function. */
export type ExecModule = Readonly<Record<string, ExecFunction>>;

/** The job's process ended by a signal: no return is sent (as when Salt's job process is killed). */
export class ProcessSignalledError extends Error {
  override readonly name = 'ProcessSignalledError';
  readonly retryable = false;
  constructor(
    readonly signal: number,
    message = `terminated by signal ${signal}`,
  ) {
    super(message);
  }
}

/** Salt's CommandExecutionError: the return is `ERROR: <message>`, retcode 1. */
export class CommandExecutionError extends Error {
  override readonly name = 'CommandExecutionError';
  readonly retryable = false;
}
