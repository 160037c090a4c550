import fs from 'node:fs';
import { InvalidArgumentError } from 'commander';
import {
  ErrorCodes,
  InputLimitError,
  SaltTexts,
  splitListTarget,
  type JobReturnedData,
  type PublishRequestInput,
  type TgtType,
} from '@jobledger/core';
import { resolveEndpoints } from '../home.js';
import { LedgerClient, RequestTooLargeError } from '@jobledger/runtime/ledger-client';
import { invokingUser } from '../invoking-user.js';
import { isOutputter, renderReturn } from '@jobledger/core/output';
import { parseFunctionArgs, yamlifyArg } from '@jobledger/runtime/salt-args';
import { waitForReturns, type WaitSource } from '@jobledger/runtime/job-wait';

export interface RunOptions {
  /** `-t`: seconds before the first `saltutil.find_job` ping (≤ 0: the default). */
  timeout: number;
  /** `--gather-job-timeout`: seconds between find_job pings (≤ 0 or unset: the default). */
  gatherJobTimeout?: number;
  verbose: boolean;
  showJid?: boolean;
  hideTimeout?: boolean;
  async: boolean;
  /** `-s`: gather every return, then print them once. */
  static?: boolean;
  summary?: boolean;
  /** From the target flags; default `glob`. */
  tgtType?: TgtType;
  /** `-L` (older callers; `tgtType` wins). */
  list?: boolean;
  /** `-E` (older callers; `tgtType` wins). */
  pcre?: boolean;
  /** `--delimiter` for grain targets. */
  delimiter?: string;
  out?: string;
  outIndent?: number;
  /** `--out-file`: write the returns there (emptied first unless `outFileAppend`). */
  outFile?: string;
  outFileAppend?: boolean;
  color?: boolean;
  ret?: string;
  /** `--return_config`: returner options are looked up under this name first (Salt's `ret_config`). */
  retConfig?: string;
  /** `--return_kwargs`: returner options overriding the configured ones (Salt's `ret_kwargs`). */
  retKwargs?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  isTTY: boolean;
  /** Registers what to do on Ctrl-C; returns the function that unregisters it. */
  onInterrupt?: (handler: () => void) => () => void;
  /** Ends the process at once. */
  exit?: (code: number) => void;
}

export const processIo: Io = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  isTTY: process.stdout.isTTY === true,
  onInterrupt: (handler) => {
    process.on('SIGINT', handler);
    return () => process.off('SIGINT', handler);
  },
  exit: (code) => process.exit(code),
};

/** Salt's default `timeout`: seconds before the CLI asks the silent agents whether they still run the job. */
export const DEFAULT_TIMEOUT = 5;
/** Salt's default `gather_job_timeout`: seconds between those questions. */
export const DEFAULT_GATHER_JOB_TIMEOUT = 10;

/** The command that looks a job up later, where Salt says `salt-run jobs.lookup_jid`. */
export const LOOKUP_COMMAND = 'jobledger runner jobs.lookup_jid';

/** Salt's `salt` texts that only the CLI prints. */
export const RunTexts = {
  missingTarget: '\nCannot execute command without defining a target.\n\n',
  incompleteOptions: '\nIncomplete options passed.\n\n',
  /** Ctrl-C while waiting (salt/scripts.py), as the reference gives it; without a jid only the first line. */
  interrupted: (jid?: string): string =>
    jid === undefined
      ? '\nExiting gracefully on Ctrl-c'
      : `\nThis job's jid is: ${jid}\nExiting gracefully on Ctrl-c\n` +
        'The minions may not have all finished running and any remaining minions will return upon completion. ' +
        `To look up the return data for this job later, run the following command:\n\n${LOOKUP_COMMAND} ${jid}`,
  noResponse: (jid: string): string => SaltTexts.noResponse(jid, LOOKUP_COMMAND),
} as const;

/** The target options (Salt's TargetOptionsMixin), mutually exclusive; none means a glob. */
export const TARGET_OPTIONS: ReadonlyArray<{ key: string; flags: string; type: TgtType }> = [
  { key: 'pcre', flags: '-E/--pcre', type: 'pcre' },
  { key: 'list', flags: '-L/--list', type: 'list' },
  { key: 'grain', flags: '-G/--grain', type: 'grain' },
  { key: 'grainPcre', flags: '-P/--grain-pcre', type: 'grain_pcre' },
  { key: 'compound', flags: '-C/--compound', type: 'compound' },
  { key: 'nodegroup', flags: '-N/--nodegroup', type: 'nodegroup' },
  { key: 'ipcidr', flags: '-S/--ipcidr', type: 'ipcidr' },
  { key: 'pillar', flags: '-I/--pillar', type: 'pillar' },
  { key: 'pillarPcre', flags: '-J/--pillar-pcre', type: 'pillar_pcre' },
  { key: 'range', flags: '-R/--range', type: 'range' },
];

/** `--metadata`: read as Salt does (`yamlify_arg`); jobledger takes only a mapping. */
/** yamlifyArg for an option: a limit is the option's own error. */
function optionYaml(value: string): unknown {
  try {
    return yamlifyArg(value);
  } catch (err) {
    if (err instanceof InputLimitError) throw new InvalidArgumentError(err.message);
    throw err;
  }
}

export function metadataArg(value: string): Record<string, unknown> {
  const parsed = optionYaml(value);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError('not a mapping (give YAML or JSON such as {"ticket": "OPS-1"})');
  }
  return parsed as Record<string, unknown>;
}

/** `--return_kwargs`: read as Salt does (`yamlify_arg`); a mapping of returner options. */
export function returnKwargsArg(value: string): Record<string, unknown> {
  const parsed = optionYaml(value);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError('not a mapping of returner options (give YAML or JSON such as {"filename": "/tmp/returns"})');
  }
  return parsed as Record<string, unknown>;
}

const RULE = '-'.repeat(43);

/** One agent's line in the output, and what `--summary` counts. */
interface Returned {
  id: string;
  value: unknown;
  retcode: number;
  out?: string;
  /** Set for an agent that did not return. */
  noReturn?: true;
}

/**
 * Salt's `--summary` block (salt/cli/salt.py `_print_returns_summary`), starting with the two
 * empty lines Salt's `print_cli("\n")` gives; `verbose` adds the lists of agents.
 */
export function summaryText(returns: Iterable<Returned>, verbose: boolean): string {
  const byId = new Map<string, Returned>();
  for (const r of returns) byId.set(r.id, r);
  let returned = 0;
  let notReturned = 0;
  const notResponding: string[] = [];
  const failed: string[] = [];
  for (const r of byId.values()) {
    if (r.noReturn) {
      notReturned++;
      notResponding.push(r.id);
    } else {
      returned++;
      if (r.retcode !== 0) failed.push(r.id);
    }
  }
  const lines = [
    '',
    '',
    RULE,
    'Summary',
    RULE,
    `# of minions targeted: ${returned + notReturned}`,
    `# of minions returned: ${returned}`,
    `# of minions that did not return: ${notReturned}`,
    `# of minions with errors: ${failed.length}`,
  ];
  if (verbose) {
    if (notResponding.length > 0) lines.push(`Minions not responding: ${notResponding.join(' ')}`);
    if (failed.length > 0) lines.push(`Minions with failures: ${failed.join(' ')}`);
  }
  lines.push(RULE);
  return lines.join('\n') + '\n';
}

/** `jobledger run` = Salt's `salt` command. Returns the exit code. */
export async function runCommand(
  target: string,
  fun: string,
  words: readonly string[],
  opts: RunOptions,
  io: Io = processIo,
): Promise<number> {
  const tgtType: TgtType = opts.tgtType ?? (opts.list ? 'list' : opts.pcre ? 'pcre' : 'glob');
  const tgt = tgtType === 'list' ? splitListTarget(target) : target;
  if (tgt.length === 0 || (typeof tgt === 'string' && tgt.trim() === '')) {
    io.stderr(RunTexts.missingTarget);
    return 42;
  }

  // Salt empties the output file when the options are parsed, unless told to append.
  const outFile = opts.outFile;
  if (outFile !== undefined && !opts.outFileAppend && fs.existsSync(outFile)) fs.writeFileSync(outFile, '');

  // Ctrl-C: the job goes on; say how to find its returns later.
  let jid: string | undefined;
  const exit = io.exit ?? ((code: number) => process.exit(code));
  const offInterrupt = io.onInterrupt?.(() => {
    io.stderr(RunTexts.interrupted(jid) + '\n');
    exit(1);
  });

  try {
    return await run(tgt, tgtType, fun, words, opts, io, (j) => (jid = j));
  } finally {
    offInterrupt?.();
  }
}

async function run(
  tgt: string | string[],
  tgtType: TgtType,
  fun: string,
  words: readonly string[],
  opts: RunOptions,
  io: Io,
  published: (jid: string) => void,
): Promise<number> {
  const endpoints = resolveEndpoints();
  let parsedArgs: ReturnType<typeof parseFunctionArgs>;
  try {
    parsedArgs = parseFunctionArgs(words);
  } catch (err) {
    if (!(err instanceof InputLimitError)) throw err;
    io.stderr(`error: ${err.message}\n`);
    return 2;
  }
  const { arg, kwarg } = parsedArgs;
  const timeout = opts.timeout > 0 ? opts.timeout : DEFAULT_TIMEOUT;
  const gatherJobTimeout =
    opts.gatherJobTimeout !== undefined && opts.gatherJobTimeout > 0 ? opts.gatherJobTimeout : DEFAULT_GATHER_JOB_TIMEOUT;
  const user = invokingUser();
  const request: PublishRequestInput = {
    tgt,
    tgt_type: tgtType,
    fun,
    arg,
    kwarg,
    user,
    ret: opts.ret ?? '',
    timeout,
  };
  if (opts.retConfig !== undefined && opts.retConfig !== '') request.ret_config = opts.retConfig;
  if (opts.retKwargs !== undefined) request.ret_kwargs = opts.retKwargs;
  if (opts.metadata !== undefined) request.metadata = opts.metadata;
  if (opts.delimiter !== undefined && opts.delimiter !== ':') request.delimiter = opts.delimiter;

  /** `--out` as given (Salt warns, per display, when it names no outputter), else nested. */
  const outputter = opts.out ?? 'nested';
  const outFile = opts.outFile;
  // Colours only on a terminal (never into a file) unless --force-color; --no-color wins.
  const color = opts.color ?? (outFile === undefined && io.isTTY);
  /** Salt's `display_output`: the rendered text, to the output file or stdout; nothing when empty. */
  const display = (data: unknown, retcode: number, name: string = outputter): void => {
    if (name === opts.out && name !== '' && !isOutputter(name))
      io.stderr(`[ERROR   ] Invalid outputter ${name} specified, fall back to nested\n`);
    const text = renderReturn(name, data, { color, retcode, outIndent: opts.outIndent });
    if (text === '') return;
    if (outFile !== undefined) fs.appendFileSync(outFile, text + '\n');
    else io.stdout(text + '\n');
  };
  /** The outputter for one return: `--out`, else the return's own `out`, else nested. */
  const outputterFor = (r: Returned): string => {
    // `--out highstate` does not override a return's own outputter (salt/output get_printout).
    if (opts.out !== undefined && opts.out !== 'highstate') return opts.out;
    if (r.noReturn) return 'no_return';
    return r.out ?? opts.out ?? 'nested';
  };

  const client = await LedgerClient.connect(endpoints.natsUrl, endpoints.stream, endpoints.auth);
  try {
    let reply;
    try {
      reply = await client.publish(request);
    } catch (err) {
      if (!(err instanceof RequestTooLargeError)) throw err;
      io.stderr(`ERROR: ${err.message}\n`);
      return 1;
    }
    if ('error' in reply) {
      if (reply.error.code === ErrorCodes.NoMinions) {
        io.stdout(SaltTexts.noMinionsMatched + '\n');
        io.stderr(SaltTexts.noReturnReceived + '\n');
        return 2;
      }
      if (
        reply.error.code === ErrorCodes.Validation ||
        reply.error.code === ErrorCodes.Config ||
        reply.error.code === ErrorCodes.Authorization ||
        reply.error.code === ErrorCodes.Authentication
      ) {
        // Salt prints a SaltInvocationError's (or an AuthorizationError's) text through the outputter, and exits 1.
        display(reply.error.message, 1);
        return 1;
      }
      io.stderr(`ERROR: ${reply.error.message}\n`);
      return 1;
    }
    const { jid, minions, missing, seq } = reply;
    published(jid);
    if (opts.async) {
      io.stdout(SaltTexts.asyncJid(jid) + '\n');
      return 0;
    }
    if (opts.verbose) {
      const line = SaltTexts.executing(jid);
      io.stdout(`${line}\n${'-'.repeat(line.length)}\n\n`);
    } else if (opts.showJid) {
      io.stdout(`jid: ${jid}\n`);
    }

    const source: WaitSource = {
      watch: (j, fromSeq, onReturn) => client.watchReturns(j, fromSeq, onReturn),
      findJob: async (j, ids) => {
        try {
          const r = await client.publish({
            tgt: ids,
            tgt_type: 'list',
            fun: 'saltutil.find_job',
            arg: [j],
            user,
            timeout: gatherJobTimeout,
            // Salt passes the CLI's keyword options (metadata included) on to its find_job jobs.
            ...(opts.metadata !== undefined ? { metadata: opts.metadata } : {}),
          });
          return 'error' in r ? undefined : { jid: r.jid, seq: r.seq };
        } catch {
          return undefined; // no ping this time: the agents' deadlines decide
        }
      },
    };

    const all: Returned[] = [];
    for await (const event of waitForReturns(source, {
      jid,
      seq,
      minions,
      missing,
      timeoutMs: timeout * 1000,
      gatherJobTimeoutMs: gatherJobTimeout * 1000,
      expectMinions: opts.verbose || !opts.hideTimeout,
    })) {
      const r: Returned =
        event.type === 'return'
          ? {
              id: event.ret.id,
              value: returnValue(event.ret),
              retcode: event.ret.retcode,
              ...(event.ret.out !== undefined ? { out: event.ret.out } : {}),
            }
          : { id: event.id, value: RunTexts.noResponse(jid), retcode: 1, out: 'no_return', noReturn: true };
      all.push(r);
      if (!opts.static) display({ [r.id]: r.value }, r.retcode, outputterFor(r));
    }

    if (opts.static) {
      if (all.length === 0) {
        io.stderr(SaltTexts.noReturnReceived + '\n');
        return 2;
      }
      // One structure through one outputter: --out, else the last return's own, else nested.
      const data: Record<string, unknown> = {};
      for (const r of all) data[r.id] = r.value;
      const own = [...all].reverse().find((r) => !r.noReturn && r.out !== undefined)?.out;
      display(
        data,
        Math.max(0, ...all.map((r) => r.retcode)),
        opts.out !== undefined && opts.out !== 'highstate' ? opts.out : (own ?? outputter),
      );
    }

    if (opts.summary && opts.out === undefined) io.stdout(summaryText(all, opts.verbose));

    if (all.some((r) => r.retcode !== 0)) {
      io.stderr(SaltTexts.nonZeroExit + '\n');
      return 1;
    }
    return 0;
  } finally {
    await client.close();
  }
}

function returnValue(ret: JobReturnedData): unknown {
  return ret.return;
}
