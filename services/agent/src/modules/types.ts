import type { BoundArgs, Signature } from './signature.js';

export type Grains = Record<string, unknown>;

/** What a running function may use. */
export interface ExecContext {
  /** The agent id the job runs as. */
  id: string;
  jid: string;
  grains: Grains;
  /** Aborted when the job is cancelled (agent stopping, start not recorded). */
  signal: AbortSignal;
  /** Shell functions call this with their child's pid as soon as it is spawned. */
  spawned(pid: number): void;
  /** Every function name the agent offers (for `sys.*`). */
  functionNames(): string[];
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
