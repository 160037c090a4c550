import {
  activeJobs,
  endTimeText,
  exitSuccess,
  formatJidInstance,
  formatJidInstanceExt,
  formatRunnerJidInstance,
  lookupJidReturn,
  normaliseListJobsFilters,
  pyTruthy,
  splitInput,
  type JobLoad,
  type JobRecord,
  type NormalisedFilters,
} from '@jobledger/core';
import type { JobStore } from './job-store.js';
import { JOB_STATUSES, type JobStatus, type ListJobsQuery } from './list-jobs-sql.js';
import type { Param, Signature } from './signature.js';

/** A runner job in progress on this dispatcher (Salt's master proc file): the runner dict and pid. */
export type RunningRunner = Readonly<Record<string, unknown>>;

/** What a runner function may use. */
export interface RunnerContext {
  /** The job cache, once the read models have caught up with the stream as it was when the call came. */
  store(): Promise<JobStore>;
  /** The caller, for jobs the runner publishes itself. */
  user: string;
  /** Runner jobs running on this dispatcher (this call included). */
  running(): RunningRunner[];
  /** Runs an execution function on agents through the publish path; `{}` when no agent matches. */
  runOnAgents(fun: string, tgt: string): Promise<Record<string, unknown>>;
  now(): Date;
}

export interface RunnerFunction {
  sig: Signature;
  /** Usage text, shown with "Passed invalid arguments". */
  doc: string;
  run(ctx: RunnerContext, a: Record<string, unknown>): Promise<unknown>;
}

/** An error the runner raises on purpose (Salt's SaltInvocationError and friends). */
export class RunnerArgumentError extends Error {
  override name = 'SaltInvocationError';
}

/** Default page of `list_jobs` (Salt returns every job; jobledger the newest `limit`). */
export const DEFAULT_LIST_LIMIT = 1000;
/** Largest page a caller may ask for. */
export const MAX_LIST_LIMIT = 100_000;

const opt = (name: string, value: unknown = null): Param => ({ name, default: value });
const req = (name: string): Param => ({ name });

/** A jid argument: Salt turns jid-looking numbers back into strings. */
function jidArg(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  throw new RunnerArgumentError(`jid must be a string, got ${JSON.stringify(v)}`);
}

function intArg(name: string, v: unknown, min: number, max: number): number {
  const n = typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new RunnerArgumentError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** A yes/no keyword that may arrive as text (an HTTP query): true, True, 1, yes. */
function flagArg(v: unknown): boolean {
  if (typeof v === 'string') return /^(true|1|yes)$/i.test(v.trim());
  return pyTruthy(v);
}

function wrapOutputter(outputter: unknown, data: unknown): unknown {
  return pyTruthy(outputter) ? { outputter, data } : data;
}

/** `list_job`: `{jid, …record, StartTime, Result, EndTime?}`. */
async function listJob(ctx: RunnerContext, jid: string): Promise<JobRecord & { Result: Record<string, unknown> }> {
  const store = await ctx.store();
  const [job, result] = await Promise.all([store.getJob(jid), store.getReturns(jid)]);
  const ret: JobRecord & { Result: Record<string, unknown> } = { jid, ...formatRunnerJidInstance(jid, job?.load ?? {}), Result: result };
  if (job?.endTime) ret.EndTime = endTimeText(job.endTime);
  return ret;
}

async function listJobsPage(
  ctx: RunnerContext,
  filters: NormalisedFilters,
  limit: number,
  offset: number,
  excludeFunctions: string[] = [],
): Promise<Array<{ jid: string; load: JobLoad }>> {
  const store = await ctx.store();
  return store.listJobs({ filters, limit, offset, excludeFunctions });
}

async function printJob(ctx: RunnerContext, jid: string): Promise<Record<string, JobRecord>> {
  const { jid: _jid, ...rest } = await listJob(ctx, jid);
  return { [jid]: rest };
}

const jobsFunctions: Record<string, RunnerFunction> = {
  active: {
    sig: { name: 'active', params: [opt('display_progress', false)] },
    doc: 'Return a report on all actively running jobs from a job id centric perspective\n\nCLI Example:\n\n    jobledger runner jobs.active',
    async run(ctx) {
      const replies = await ctx.runOnAgents('saltutil.running', '*');
      const ret = activeJobs(replies);
      const jids = Object.keys(ret);
      if (jids.length > 0) {
        const returned = await (await ctx.store()).returnedIds(jids);
        for (const jid of jids) ret[jid]!.Returned = returned.get(jid) ?? [];
      }
      return ret;
    },
  },

  lookup_jid: {
    sig: {
      name: 'lookup_jid',
      params: [req('jid'), opt('ext_source'), opt('returned', true), opt('missing', false), opt('display_progress', false)],
    },
    doc:
      'Return the printout from a previously executed job\n\njid\n    The jid to look up.\n\nreturned : True\n    If True, include the minions that did return from the command.\n\n' +
      'missing : False\n    If True, include the minions that did *not* return from the command.\n\nCLI Example:\n\n    jobledger runner jobs.lookup_jid 20130916125524463507\n    jobledger runner jobs.lookup_jid 20130916125524463507 --out=highstate',
    async run(ctx, a) {
      const data = await listJob(ctx, jidArg(a.jid));
      const minions = Array.isArray(data.Minions) ? (data.Minions as unknown[]).filter((m): m is string => typeof m === 'string') : [];
      return lookupJidReturn(minions, data.Result, { returned: pyTruthy(a.returned), missing: pyTruthy(a.missing) });
    },
  },

  list_job: {
    sig: { name: 'list_job', params: [req('jid'), opt('ext_source'), opt('display_progress', false)] },
    doc: 'List a specific job given by its jid\n\nCLI Example:\n\n    jobledger runner jobs.list_job 20130916125524463507\n    jobledger runner jobs.list_job 20130916125524463507 --out=pprint',
    async run(ctx, a) {
      return listJob(ctx, jidArg(a.jid));
    },
  },

  list_jobs: {
    sig: {
      name: 'list_jobs',
      params: [
        opt('ext_source'),
        opt('outputter'),
        opt('search_metadata'),
        opt('search_function'),
        opt('search_target'),
        opt('start_time'),
        opt('end_time'),
        opt('display_progress', false),
        opt('limit', DEFAULT_LIST_LIMIT),
        opt('offset', 0),
        opt('page'),
        opt('search_user'),
        opt('status'),
        opt('after'),
        opt('hide_internal', false),
        opt('show_counts', false),
      ],
    },
    doc:
      'List the newest jobs (limit, default 1000) and their functions, oldest first; all given filters must match.\n\n' +
      'search_metadata\n    A dictionary; any equal key/value pair in the job metadata matches.\nsearch_function\n    Globs (a list or comma separated) on the function.\n' +
      'search_target\n    Globs (a list or comma separated) on the target.\nstart_time / end_time\n    Jobs started at or after / at or before this time (UTC).\n' +
      'limit, offset, page\n    The page of newest jobs: limit (1 to 100000), offset, or page (1 is the newest).\n' +
      'search_user\n    Globs on the user who ran the job (jobledger).\nstatus\n    running, failed, succeeded or no-return (jobledger).\n' +
      'after\n    A jid: the page of jobs older than it, for keyset paging (jobledger).\n' +
      'hide_internal\n    Leave out saltutil.find_job and runner jobs (jobledger).\n' +
      'show_counts\n    Add Expected, Returned and Failed: the agents the job expects, that returned, that failed (jobledger).\n\nCLI Example:\n\n' +
      "    jobledger runner jobs.list_jobs\n    jobledger runner jobs.list_jobs search_function='test.*' search_target='localhost' search_metadata='{\"bar\": \"foo\"}'\n" +
      "    jobledger runner jobs.list_jobs start_time='2015, Mar 16 19:00' end_time='2015, Mar 18 22:00'",
    async run(ctx, a) {
      const filters = normaliseListJobsFilters(a, ctx.now());
      const limit = intArg('limit', a.limit, 1, MAX_LIST_LIMIT);
      let offset = intArg('offset', a.offset, 0, Number.MAX_SAFE_INTEGER);
      if (a.page !== null && a.page !== undefined) offset = (intArg('page', a.page, 1, Number.MAX_SAFE_INTEGER) - 1) * limit;
      const extra: Pick<ListJobsQuery, 'users' | 'status' | 'after' | 'hideInternal'> = { hideInternal: flagArg(a.hide_internal) };
      if (a.search_user !== null && a.search_user !== undefined) extra.users = splitInput(a.search_user);
      if (a.status !== null && a.status !== undefined) {
        if (typeof a.status !== 'string' || !(JOB_STATUSES as readonly string[]).includes(a.status)) {
          throw new RunnerArgumentError(`status must be one of ${JOB_STATUSES.join(', ')}, got ${JSON.stringify(a.status)}`);
        }
        extra.status = a.status as JobStatus;
      }
      if (a.after !== null && a.after !== undefined) extra.after = jidArg(a.after);
      const store = await ctx.store();
      const rows = await store.listJobs({ filters, limit, offset, ...extra });
      const ret: Record<string, JobRecord> = {};
      const counts = flagArg(a.show_counts);
      for (const r of rows) {
        ret[r.jid] = counts
          ? { ...formatJidInstance(r.jid, r.load), Expected: r.counts.expected, Returned: r.counts.returned, Failed: r.counts.failed }
          : formatJidInstance(r.jid, r.load);
      }
      return wrapOutputter(a.outputter, ret);
    },
  },

  list_jobs_filter: {
    sig: {
      name: 'list_jobs_filter',
      params: [req('count'), opt('filter_find_job', true), opt('ext_source'), opt('outputter'), opt('display_progress', false)],
    },
    doc: 'List the last count jobs, oldest first\n\nCLI Example:\n\n    jobledger runner jobs.list_jobs_filter 50\n    jobledger runner jobs.list_jobs_filter 100 filter_find_job=False',
    async run(ctx, a) {
      const count = intArg('count', a.count, 0, MAX_LIST_LIMIT);
      const rows = count === 0 ? [] : await listJobsPage(ctx, {}, count, 0, pyTruthy(a.filter_find_job) ? ['saltutil.find_job'] : []);
      return wrapOutputter(
        a.outputter,
        rows.map((r) => formatJidInstanceExt(r.jid, r.load)),
      );
    },
  },

  print_job: {
    sig: { name: 'print_job', params: [req('jid'), opt('ext_source')] },
    doc: "Print a specific job's detail given by its jid, including the return data.\n\nCLI Example:\n\n    jobledger runner jobs.print_job 20130916125524463507",
    async run(ctx, a) {
      return printJob(ctx, jidArg(a.jid));
    },
  },

  exit_success: {
    sig: { name: 'exit_success', params: [req('jid'), opt('ext_source')] },
    doc: 'Check if a job has been executed and exit successfully\n\njid\n    The jid to look up.\n\nCLI Example:\n\n    jobledger runner jobs.exit_success 20160520145827701627',
    async run(ctx, a) {
      const data = await listJob(ctx, jidArg(a.jid));
      const minions = Array.isArray(data.Minions) ? (data.Minions as unknown[]).filter((m): m is string => typeof m === 'string') : [];
      return exitSuccess(minions, data.Result);
    },
  },

  last_run: {
    sig: {
      name: 'last_run',
      params: [opt('ext_source'), opt('outputter'), opt('metadata'), opt('function'), opt('target'), opt('display_progress', false)],
    },
    doc: "List the newest job matching the filters, with its returns\n\nCLI Example:\n\n    jobledger runner jobs.last_run\n    jobledger runner jobs.last_run target=nodename\n    jobledger runner jobs.last_run function='cmd.run'\n    jobledger runner jobs.last_run metadata=\"{'foo': 'bar'}\"",
    async run(ctx, a) {
      if (pyTruthy(a.metadata) && (typeof a.metadata !== 'object' || Array.isArray(a.metadata))) return false;
      const filters = normaliseListJobsFilters(
        { search_metadata: a.metadata, search_function: a.function, search_target: a.target },
        ctx.now(),
      );
      const [newest] = await listJobsPage(ctx, filters, 1, 0);
      if (newest === undefined) return false;
      return printJob(ctx, newest.jid);
    },
  },

  master: {
    sig: { name: 'master', params: [] },
    doc: 'Return the actively executing runners for the master\n\nCLI Example:\n\n    jobledger runner jobs.master',
    async run(ctx) {
      return ctx.running();
    },
  },
};

/** Every runner function by its Salt name (`jobs.list_jobs`). */
export const RUNNER_FUNCTIONS: ReadonlyMap<string, RunnerFunction> = new Map(
  Object.entries({ jobs: jobsFunctions }).flatMap(([mod, fns]) => Object.entries(fns).map(([name, fn]) => [`${mod}.${name}`, fn] as const)),
);
