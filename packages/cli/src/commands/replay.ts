import { genJid, PROJECTOR_CONSUMER } from '@jobledger/core';
import path from 'node:path';
import {
  configuredMasterId,
  jobledgerHome,
  masterSignatureTrust,
  openDatabase,
  quoteIdent,
  SchemaError,
  verifyDatabase,
} from '@jobledger/runtime';
import { replay, ReplayUsageError, type RebuildProgress } from '@jobledger/projector';
import { resolveEndpoints } from '../home.js';
import { commandError, count, openLedgerStream, percent, progressLine, upgradeHint, whileInterruptible } from './ledger-stream.js';

export interface ReplayCommandOptions {
  fromSeq?: number;
  since?: string;
  into?: string;
  swap?: boolean;
}

type Io = { stdout: (t: string) => void; stderr: (t: string) => void; stderrIsTTY: boolean };

/**
 * `jobledger replay`: rebuilds the read models from the stream into a fresh schema (see the
 * projector's replay.ts), with progress on stderr (in place on a terminal, a plain line every
 * 10 s otherwise) and one summary line on stdout.
 *
 * Exit 0 when done; 2 on bad arguments, a database or ledger that cannot be used, or any error
 * on the way (one line on stderr). A failed replay into the default `replay_<stamp>` schema
 * drops it (nothing was swapped: a swap renames it in the transaction that would have had to
 * commit); one into `--into S` leaves S for inspection and says so. An interrupted one
 * (SIGINT/SIGTERM) names the schema it leaves.
 */
export async function replayCommand(opts: ReplayCommandOptions, io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let since: Date | undefined;
  if (opts.since !== undefined) {
    since = new Date(opts.since);
    if (Number.isNaN(since.getTime())) {
      io.stderr(`jobledger replay: --since ${JSON.stringify(opts.since)} is not a date and time (e.g. 2026-11-26T10:00:00Z)\n`);
      return 2;
    }
  }
  const { natsUrl, databaseUrl, stream, auth } = resolveEndpoints(env);
  await verifyDatabase(databaseUrl);
  const ledger = await openLedgerStream(natsUrl, stream, auth);
  const name = env.JOBLEDGER_PROJECTOR_CONSUMER || PROJECTOR_CONSUMER;
  // The default name is chosen here, so that a failure can drop or name it.
  const generated = opts.into === undefined;
  const into = opts.into ?? `replay_${genJid()}`;
  const progress = progressLine(io, io.stderrIsTTY);
  try {
    const r = await whileInterruptible(
      () => {
        progress.done();
        io.stderr(
          `jobledger replay: interrupted: schema ${into} (if it exists) holds a partial rebuild; drop it with DROP SCHEMA ${quoteIdent(into)} CASCADE\n`,
        );
      },
      () =>
        replay({
          databaseUrl,
          ledger,
          name,
          masterId: configuredMasterId(env),
          into,
          fromSeq: opts.fromSeq,
          since,
          swap: opts.swap === true,
          signatureTrust: masterSignatureTrust(path.join(jobledgerHome(env), 'pki')),
          onProgress: (p: RebuildProgress) =>
            progress.show(
              `replay: sequence ${count(p.seq)} of ${count(p.target)} (${percent(p.seq, p.fromSeq, p.target)}), ${count(p.eventsPerSecond)} events/s`,
            ),
        }),
    );
    progress.done();
    const range = r.lastSeq >= r.fromSeq ? `sequences ${r.fromSeq}-${r.lastSeq}` : 'no sequences';
    const swapped = r.retired
      ? `; swapped in as the live schema ${r.schema}, the previous tables are in schema ${r.retired}`
      : ` into schema ${r.schema}`;
    io.stdout(
      `replayed ${count(r.applied)} events (${range}, ${count(r.deadLetters)} dead letters, ${count(r.removals)} retention removals)` +
        `${swapped} in ${(r.ms / 1000).toFixed(1)} s (${count(r.eventsPerSecond)} events/s)\n`,
    );
    if (r.removalsSkipped > 0) {
      io.stdout(
        `${count(r.removalsSkipped)} retention removals were not applied: retention recorded them after the replay had passed their ` +
          'sequence (the projector was behind it), so the rebuild may still hold jobs the live tables no longer have\n',
      );
    }
    if (!r.retired) {
      const hint = await upgradeHint(databaseUrl, name).catch(() => undefined);
      if (hint) io.stderr(`replay: ${hint}`);
    }
    return 0;
  } catch (err) {
    progress.done();
    if (err instanceof ReplayUsageError || err instanceof SchemaError) {
      io.stderr(`jobledger replay: ${err.message}\n`);
      return 2;
    }
    const line = commandError('replay', err, databaseUrl).trimEnd();
    io.stderr(`${line}${await leftover(databaseUrl, into, generated)}\n`);
    return 2;
  } finally {
    await ledger.nc.close().catch(() => undefined);
  }
}

/** After a failed replay: drops the schema it generated, or names the one given with --into. */
async function leftover(databaseUrl: string, schema: string, drop: boolean): Promise<string> {
  const database = openDatabase(databaseUrl, { max: 1 });
  try {
    const { rows } = await database.pool.query<{ exists: boolean }>('SELECT to_regnamespace($1) IS NOT NULL AS exists', [schema]);
    if (!rows[0]?.exists) return '';
    if (drop) {
      await database.pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
      return ` (nothing was swapped; the partial rebuild in schema ${schema} was dropped)`;
    }
    return ` (nothing was swapped; schema ${schema} holds the partial rebuild: drop it with DROP SCHEMA ${quoteIdent(schema)} CASCADE)`;
  } catch {
    return ` (schema ${schema} may hold a partial rebuild: drop it with DROP SCHEMA ${quoteIdent(schema)} CASCADE)`;
  } finally {
    await database.close().catch(() => undefined);
  }
}
