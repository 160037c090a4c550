import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats, type NatsAuth } from '@jobledger/runtime/nats-connect';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { databaseError, openDatabase, type Ledger } from '@jobledger/runtime';
import { LIVE_SCHEMA, Rebuild } from '@jobledger/projector';
import { MASTER_UNREACHABLE, MasterUnreachableError } from '@jobledger/runtime/ledger-client';
import { NotRunningError } from '../home.js';

/** The ledger stream for reading (never created here): for commands that rebuild from it. */
export async function openLedgerStream(natsUrl: string, stream: string, auth?: NatsAuth): Promise<Ledger> {
  let nc: NatsConnection;
  try {
    nc = await connectNats({ servers: natsUrl, name: 'jobledger-cli', timeout: 3000, auth });
  } catch (cause) {
    throw new MasterUnreachableError(MASTER_UNREACHABLE, { cause });
  }
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(stream);
  } catch (cause) {
    await nc.close();
    throw new NotRunningError(`the ledger stream ${stream} does not exist at ${natsUrl}`, { cause });
  }
  return { nc, js: jetstream(nc), jsm, stream };
}

/** `12,345`. */
export const count = (n: number): string => n.toLocaleString('en-US');

/** Off a terminal, one plain progress line every this many ms (none for a command done sooner). */
export const PLAIN_PROGRESS_EVERY_MS = 10_000;

/**
 * Progress on stderr. On a terminal: one line rewritten in place, cleared by `done`. Otherwise
 * (a log, a pipe): a plain line every `everyMs`, the first one only after `everyMs`, so a short
 * run prints nothing.
 */
export function progressLine(io: { stderr: (t: string) => void }, tty: boolean, opts: { everyMs?: number; now?: () => number } = {}) {
  const everyMs = opts.everyMs ?? PLAIN_PROGRESS_EVERY_MS;
  const now = opts.now ?? Date.now;
  let shown = false;
  let nextPlain = now() + everyMs;
  return {
    show(text: string) {
      if (tty) {
        io.stderr(`\r\x1b[2K${text}`);
        shown = true;
        return;
      }
      const t = now();
      if (t < nextPlain) return;
      nextPlain = t + everyMs;
      io.stderr(`${text}\n`);
    },
    done() {
      if (shown) io.stderr('\r\x1b[2K');
      shown = false;
    },
  };
}

/** `jobledger <command>: <message>` for an error that ends a command; pg errors are named by the runtime first. */
export function commandError(command: string, err: unknown, databaseUrl?: string): string {
  const e = databaseUrl === undefined ? err : databaseError(err, databaseUrl);
  const message = e instanceof Error ? e.message : String(e);
  return `jobledger ${command}: ${message.replace(/\s*\n\s*/g, ' ')}\n`;
}

export function percent(seq: number, fromSeq: number, target: number): string {
  const total = target - fromSeq + 1;
  if (total <= 0) return '100%';
  return `${Math.min(100, Math.floor(((seq - fromSeq + 1) / total) * 100))}%`;
}

/**
 * The hint for a ledger upgraded from a version before the hash chain (projector_checkpoint's
 * `backfilled_seq`, read through the projector's Rebuild.upgradedAt), or undefined.
 */
export async function upgradeHint(databaseUrl: string, name: string): Promise<string | undefined> {
  const database = openDatabase(databaseUrl, { max: 1 });
  try {
    const seq = await Rebuild.upgradedAt(database.pool, LIVE_SCHEMA, name);
    if (seq === undefined) return undefined;
    return (
      `this ledger was upgraded at seq ${seq}: rows retention removed before then cannot be checked (they show as missing); ` +
      'run `jobledger replay --swap` once to start from a rebuilt history\n'
    );
  } finally {
    await database.close().catch(() => undefined);
  }
}

/** Runs `f` with SIGINT/SIGTERM turned into `onSignal` (then exit 128 + n) while it runs. */
export async function whileInterruptible<T>(onSignal: () => void, f: () => Promise<T>): Promise<T> {
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => {
    const h = () => {
      onSignal();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    };
    process.once(sig, h);
    return [sig, h] as const;
  });
  try {
    return await f();
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}
