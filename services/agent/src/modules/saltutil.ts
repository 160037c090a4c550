import { globMatch } from '@jobledger/core';
import { parseSignal } from '../processes.js';
import { CommandExecutionError, type ExecContext, type ExecModule, type ProcRecord } from './types.js';

const SIGTERM = 15;
const SIGKILL = 9;

/** Salt compares jids as strings (the CLI turns jid-looking numbers back into strings). */
function jidArg(value: unknown): string {
  return typeof value === 'string' ? value : String(value);
}

function signalArg(value: unknown): number {
  const n = parseSignal(value);
  if (n === undefined) throw new CommandExecutionError(`Invalid signal: ${typeof value === 'string' ? `'${value}'` : String(value)}`);
  return n;
}

/** `saltutil.running` as Salt has it: every live job of the id except the one asking. */
async function others(ctx: ExecContext): Promise<ProcRecord[]> {
  return (await ctx.jobs.running()).filter((r) => r.jid !== ctx.jid);
}

async function findOther(ctx: ExecContext, jid: string): Promise<ProcRecord | undefined> {
  return jid === ctx.jid ? undefined : ctx.jobs.find(jid);
}

/** Salt's `signal_job` texts. */
async function signalJob(ctx: ExecContext, jid: string, signal: number): Promise<string> {
  if (jid === ctx.jid) return '';
  const r = await ctx.jobs.signal(jid, signal);
  switch (r.kind) {
    case 'sent':
      return `Signal ${signal} sent to job ${jid} at pid ${r.pid}`;
    case 'not-running':
      return `Job ${jid} was not running and job data has been cleaned up`;
    case 'unknown':
      return '';
    default:
      return r satisfies never;
  }
}

async function signalAll(ctx: ExecContext, signal: number): Promise<string[]> {
  const out: string[] = [];
  for (const r of await others(ctx)) out.push(await signalJob(ctx, r.jid, signal));
  return out;
}

/** Salt's `saltutil` module: the job-management functions (§8 of the Salt reference). */
export const saltutil: ExecModule = {
  running: {
    kind: 'inproc',
    signature: { name: 'running', params: [] },
    doc: 'Return the data on all running salt processes on the minion.',
    run: async (_args, ctx) => ({ return: await others(ctx) }),
  },
  is_running: {
    kind: 'inproc',
    signature: { name: 'is_running', params: ['fun'] },
    doc: 'If the named function is running return the data associated with it/them. The argument can be a glob.',
    run: async ({ named }, ctx) => {
      const pattern = String(named.fun);
      return { return: (await others(ctx)).filter((r) => globMatch(typeof r.fun === 'string' ? r.fun : '', pattern)) };
    },
  },
  find_job: {
    kind: 'inproc',
    signature: { name: 'find_job', params: ['jid'] },
    doc: 'Return the data for a specific job id that is currently running, or an empty dictionary.',
    run: async ({ named }, ctx) => ({ return: (await findOther(ctx, jidArg(named.jid))) ?? {} }),
  },
  find_cached_job: {
    kind: 'inproc',
    signature: { name: 'find_cached_job', params: ['jid'] },
    doc: 'Return the data for a specific cached job id (needs cache_jobs, which this agent does not keep).',
    run: async () => ({ return: 'Local jobs cache directory not found; you may need to enable cache_jobs on this minion' }),
  },
  signal_job: {
    kind: 'inproc',
    signature: { name: 'signal_job', params: ['jid', 'sig'] },
    doc: "Sends a signal (a number or a name: 15, TERM, SIGTERM) to the named job's processes.",
    run: async ({ named }, ctx) => ({ return: await signalJob(ctx, jidArg(named.jid), signalArg(named.sig)) }),
  },
  term_job: {
    kind: 'inproc',
    signature: { name: 'term_job', params: ['jid'] },
    doc: "Sends a termination signal (SIGTERM 15) to the named job's processes.",
    run: async ({ named }, ctx) => ({ return: await signalJob(ctx, jidArg(named.jid), SIGTERM) }),
  },
  kill_job: {
    kind: 'inproc',
    signature: { name: 'kill_job', params: ['jid'] },
    doc: "Sends a kill signal (SIGKILL 9) to the named job's processes.",
    run: async ({ named }, ctx) => ({ return: await signalJob(ctx, jidArg(named.jid), SIGKILL) }),
  },
  term_all_jobs: {
    kind: 'inproc',
    signature: { name: 'term_all_jobs', params: [] },
    doc: 'Sends a termination signal (SIGTERM 15) to all currently running jobs.',
    run: async (_args, ctx) => ({ return: await signalAll(ctx, SIGTERM) }),
  },
  kill_all_jobs: {
    kind: 'inproc',
    signature: { name: 'kill_all_jobs', params: [] },
    doc: 'Sends a kill signal (SIGKILL 9) to all currently running jobs.',
    run: async (_args, ctx) => ({ return: await signalAll(ctx, SIGKILL) }),
  },
};
