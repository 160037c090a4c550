import { SaltTexts, splitListTarget, type JobReturnedData } from '@jobledger/core';
import { resolveEndpoints } from '../home.js';
import type { PublishRequestInput, TgtType } from '@jobledger/core';
import { LedgerClient, invokingUser } from '../ledger-client.js';
import { renderReturn, resolveOutputter } from '../output/index.js';
import { parseFunctionArgs } from '../salt-args.js';

export interface RunOptions {
  timeout: number;
  verbose: boolean;
  async: boolean;
  list: boolean;
  pcre: boolean;
  out?: string;
  outIndent?: number;
  color?: boolean;
  ret?: string;
}

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  isTTY: boolean;
}

export const processIo: Io = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  isTTY: process.stdout.isTTY === true,
};

/** Salt's default `timeout` before the CLI gives up on a silent minion, in seconds. */
export const DEFAULT_TIMEOUT = 5;

/** `jobledger run` = Salt's `salt` command. Returns the exit code. */
export async function runCommand(
  target: string,
  fun: string,
  words: readonly string[],
  opts: RunOptions,
  io: Io = processIo,
): Promise<number> {
  const endpoints = resolveEndpoints();
  const { arg, kwarg } = parseFunctionArgs(words);
  const tgtType: TgtType = opts.list ? 'list' : opts.pcre ? 'pcre' : 'glob';
  const timeout = opts.timeout > 0 ? opts.timeout : DEFAULT_TIMEOUT;
  const request: PublishRequestInput = {
    tgt: tgtType === 'list' ? splitListTarget(target) : target,
    tgt_type: tgtType,
    fun,
    arg,
    kwarg,
    user: invokingUser(),
    ret: opts.ret ?? '',
    timeout,
  };
  const outputter = resolveOutputter(opts.out);
  const color = opts.color ?? io.isTTY;
  const print = (data: Record<string, unknown>, retcode: number, name = outputter) => {
    const text = renderReturn(name, data, { color, retcode, outIndent: opts.outIndent });
    if (text !== '') io.stdout(text + '\n');
  };

  const client = await LedgerClient.connect(endpoints.natsUrl, endpoints.stream);
  try {
    const reply = await client.publish(request);
    if ('error' in reply) {
      if (reply.error.code === 'NO_MINIONS') {
        io.stdout(SaltTexts.noMinionsMatched + '\n');
        io.stderr(SaltTexts.noReturnReceived + '\n');
        return 2;
      }
      io.stderr(`ERROR: ${reply.error.message}\n`);
      return 1;
    }
    const { jid, minions, missing, seq } = reply;
    if (opts.async) {
      io.stdout(SaltTexts.asyncJid(jid) + '\n');
      return 0;
    }
    if (opts.verbose) {
      const line = SaltTexts.executing(jid);
      io.stdout(`${line}\n${'-'.repeat(line.length)}\n\n`);
    }

    const outstanding = new Set(minions);
    let failed = false;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeout * 1000);
    try {
      if (outstanding.size > 0) {
        for await (const ret of client.returns(jid, seq, deadline.signal)) {
          outstanding.delete(ret.id);
          if (ret.retcode !== 0) failed = true;
          print({ [ret.id]: returnValue(ret) }, ret.retcode, pickOutputter(opts.out, ret, outputter));
          if (outstanding.size === 0) break;
        }
      }
    } finally {
      clearTimeout(timer);
    }

    // Silent agents, then names no agent has, as Salt's `no_return` outputter shows them.
    for (const id of [...outstanding, ...missing]) {
      failed = true;
      const text = SaltTexts.noResponse(jid);
      print({ [id]: text }, 1, opts.out === undefined ? 'no_return' : outputter);
    }
    if (failed) {
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

/** A return's own `out` picks the outputter unless `--out` was given. */
function pickOutputter(explicit: string | undefined, ret: JobReturnedData, fallback: ReturnType<typeof resolveOutputter>) {
  if (explicit !== undefined || ret.out === undefined) return fallback;
  return resolveOutputter(ret.out);
}
