import type { RunnerReply } from '@jobledger/core';
import { LedgerClient, RunnerTimeoutError } from '@jobledger/runtime/ledger-client';
import { resolveEndpoints } from '../home.js';
import { invokingUser } from '../invoking-user.js';
import { renderReturn } from '@jobledger/core/output';
import { parseFunctionArgs } from '@jobledger/runtime/salt-args';
import { processIo, type Io } from './run.js';

export interface RunnerOptions {
  /** Seconds to wait for the runner's answer. */
  timeout: number;
  out?: string;
  outIndent?: number;
  color?: boolean;
}

/** Default seconds `jobledger runner` waits for an answer (`jobs.active` alone takes 5). */
export const DEFAULT_RUNNER_TIMEOUT = 120;

/** Salt's CLI argument parsing; a word that is a jid stays a string (see `yamlifyArg`). */
export function runnerArgs(words: readonly string[]): { arg: unknown[]; kwarg: Record<string, unknown> } {
  return parseFunctionArgs(words);
}

const isDict = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A runner's `{"outputter": …, "data": …}` wrapping: salt-run prints `data` with that outputter. */
export function unwrapOutputter(ret: unknown): { data: unknown; outputter?: string } {
  if (isDict(ret)) {
    const keys = Object.keys(ret);
    if (keys.length === 2 && 'data' in ret && 'outputter' in ret) {
      return { data: ret.data, outputter: typeof ret.outputter === 'string' ? ret.outputter : undefined };
    }
  }
  return { data: ret };
}

/** `jobledger runner` = Salt's `salt-run`. Returns the exit code: 0, or 1 when the runner failed. */
export async function runnerCommand(fun: string, words: readonly string[], opts: RunnerOptions, io: Io = processIo): Promise<number> {
  const endpoints = resolveEndpoints();
  const { arg, kwarg } = runnerArgs(words);
  const client = await LedgerClient.connect(endpoints.natsUrl, endpoints.stream, endpoints.auth);
  let reply: RunnerReply;
  try {
    const timeout = opts.timeout > 0 ? opts.timeout : DEFAULT_RUNNER_TIMEOUT;
    reply = await client.runner({ fun, arg, kwarg, user: invokingUser() }, timeout * 1000);
  } catch (err) {
    if (err instanceof RunnerTimeoutError) {
      io.stderr(`ERROR: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await client.close();
  }
  if ('error' in reply) {
    io.stderr(`ERROR: ${reply.error.message}\n`);
    return 1;
  }
  const { data, outputter } = unwrapOutputter(reply.return);
  const text = renderReturn(opts.out ?? outputter ?? 'nested', data, { color: opts.color ?? io.isTTY, outIndent: opts.outIndent });
  if (text !== '') io.stdout(text + '\n');
  return reply.success ? 0 : 1;
}
