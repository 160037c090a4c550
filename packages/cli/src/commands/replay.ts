import { PROJECTOR_CONSUMER } from '@jobledger/core';
import { masterId, SchemaError, verifyDatabase } from '@jobledger/runtime';
import { replay, ReplayUsageError, type RebuildProgress } from '@jobledger/projector';
import { resolveEndpoints } from '../home.js';
import { count, openLedgerStream, percent, progressLine } from './ledger-stream.js';

export interface ReplayCommandOptions {
  fromSeq?: number;
  since?: string;
  into?: string;
  swap?: boolean;
}

/**
 * `jobledger replay`: rebuilds the read models from the stream into a fresh schema (see the
 * projector's replay.ts), with progress on a terminal and one summary line on stdout.
 */
export async function replayCommand(
  opts: ReplayCommandOptions,
  io: { stdout: (t: string) => void; stderr: (t: string) => void; stderrIsTTY: boolean },
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let since: Date | undefined;
  if (opts.since !== undefined) {
    since = new Date(opts.since);
    if (Number.isNaN(since.getTime())) {
      io.stderr(`jobledger replay: --since ${JSON.stringify(opts.since)} is not a date and time (e.g. 2026-11-26T10:00:00Z)\n`);
      return 2;
    }
  }
  const { natsUrl, databaseUrl, stream } = resolveEndpoints(env);
  await verifyDatabase(databaseUrl);
  const ledger = await openLedgerStream(natsUrl, stream);
  const progress = progressLine(io, io.stderrIsTTY);
  try {
    const r = await replay({
      databaseUrl,
      ledger,
      name: env.JOBLEDGER_PROJECTOR_CONSUMER || PROJECTOR_CONSUMER,
      masterId: masterId(env),
      into: opts.into,
      fromSeq: opts.fromSeq,
      since,
      swap: opts.swap === true,
      onProgress: (p: RebuildProgress) =>
        progress.show(
          `replay: sequence ${count(p.seq)} of ${count(p.target)} (${percent(p.seq, p.fromSeq, p.target)}), ${count(p.eventsPerSecond)} events/s`,
        ),
    });
    progress.done();
    const range = r.lastSeq >= r.fromSeq ? `sequences ${r.fromSeq}-${r.lastSeq}` : 'no sequences';
    const swapped = r.retired
      ? `; swapped in as the live schema ${r.schema}, the previous tables are in schema ${r.retired}`
      : ` into schema ${r.schema}`;
    io.stdout(
      `replayed ${count(r.applied)} events (${range}, ${count(r.deadLetters)} dead letters, ${count(r.removals)} retention removals)` +
        `${swapped} in ${(r.ms / 1000).toFixed(1)} s (${count(r.eventsPerSecond)} events/s)\n`,
    );
    return 0;
  } catch (err) {
    progress.done();
    if (err instanceof ReplayUsageError || err instanceof SchemaError) {
      io.stderr(`jobledger replay: ${err.message}\n`);
      return 2;
    }
    throw err;
  } finally {
    await ledger.nc.close().catch(() => undefined);
  }
}
