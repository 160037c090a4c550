import { PROJECTOR_CONSUMER } from '@jobledger/core';
import path from 'node:path';
import { configuredMasterId, jobledgerHome, masterSignatureTrust, verifyDatabase } from '@jobledger/runtime';
import { auditVerify, formatDifference, type RebuildProgress } from '@jobledger/projector';
import { resolveEndpoints } from '../home.js';
import { streamBounds } from '@jobledger/projector';
import { commandError, count, openLedgerStream, percent, progressLine, upgradeHint } from './ledger-stream.js';

/** `jobledger audit verify` (registered in main.ts, which loads this file only when it runs). */
type Io = { stdout: (t: string) => void; stderr: (t: string) => void; stderrIsTTY: boolean };

/**
 * `jobledger audit verify`: every difference on stdout, then one summary line; exit 1 on any
 * difference, 2 when it could not verify (one line on stderr: the database, the stream, a
 * checkpoint beyond the stream, …). Notes on what cannot be checked go to stderr.
 */
export async function auditVerifyCommand(io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { natsUrl, databaseUrl, stream, auth } = resolveEndpoints(env);
  await verifyDatabase(databaseUrl);
  const ledger = await openLedgerStream(natsUrl, stream, auth);
  const progress = progressLine(io, io.stderrIsTTY);
  const name = env.JOBLEDGER_PROJECTOR_CONSUMER || PROJECTOR_CONSUMER;
  try {
    const r = await auditVerify({
      databaseUrl,
      ledger,
      name,
      masterId: configuredMasterId(env),
      env,
      signatureTrust: masterSignatureTrust(path.join(jobledgerHome(env), 'pki')),
      onProgress: (p: RebuildProgress) =>
        progress.show(
          `audit verify: rebuilding, sequence ${count(p.seq)} of ${count(p.target)} (${percent(p.seq, p.fromSeq, p.target)}), ${count(p.eventsPerSecond)} events/s`,
        ),
    });
    progress.done();
    for (const p of r.signatures.problems) io.stdout(`signature: seq ${p.seq} (${p.subject}): ${p.reason}\n`);
    if (r.signatures.count > r.signatures.problems.length)
      io.stdout(`… and ${count(r.signatures.count - r.signatures.problems.length)} more badly signed events\n`);
    if (!r.signatures.checked) io.stderr('audit verify: no master event key in this home (pki/events.pub): signatures were not checked\n');
    for (const d of r.differences) io.stdout(formatDifference(d) + '\n');
    if (r.differenceCount > r.differences.length) io.stdout(`… and ${count(r.differenceCount - r.differences.length)} more differences\n`);
    if (r.chain.first) {
      io.stdout(
        `projector_chain: hash chain diverges first at seq ${r.chain.first.seq}: stored ${r.chain.first.stored}, recomputed ${r.chain.first.recomputed}` +
          ` (${count(r.chain.diverging)} of ${count(r.chain.checked)} stored values differ)\n`,
      );
    }
    if (r.chain.unknown)
      io.stderr('audit verify: the checkpoint carries no hash chain (it predates it): the chain head was not verified\n');
    // Notes only: a failure to read them does not change the verdict.
    const first = await streamBounds(ledger).then(
      (b) => b.first,
      () => 1,
    );
    if (first > 1) {
      io.stderr(
        `audit verify: the stream starts at seq ${first} (the messages before it were removed outside jobledger): the hash chain cannot be recomputed\n`,
      );
    }
    const hint = await upgradeHint(databaseUrl, name).catch(() => undefined);
    if (hint) io.stderr(`audit verify: ${hint}`);
    const seconds = (r.ms / 1000).toFixed(1);
    if (r.ok) {
      io.stdout(
        `audit verify: OK: ${count(r.events)} events up to seq ${r.seq}${r.signatures.checked ? ' (every signature valid)' : ''}, ${count(r.rows)} rows and ${count(r.chain.checked)} chain values match (${seconds} s)\n`,
      );
      return 0;
    }
    io.stdout(
      `audit verify: FAILED: ${count(r.differenceCount)} row differences, ${count(r.chain.diverging)} chain values differ, ` +
        `${count(r.signatures.count)} events badly signed ` +
        `(${count(r.events)} events up to seq ${r.seq}, ${count(r.rows)} rows, ${seconds} s)\n`,
    );
    return 1;
  } catch (err) {
    // Not "differences found" (exit 1): it could not verify.
    progress.done();
    io.stderr(commandError('audit verify', err, databaseUrl));
    return 2;
  } finally {
    progress.done();
    await ledger.nc.close().catch(() => undefined);
  }
}
