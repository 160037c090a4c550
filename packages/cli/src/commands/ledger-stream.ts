import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Ledger } from '@jobledger/runtime';
import { MASTER_UNREACHABLE, MasterUnreachableError } from '../ledger-client.js';
import { NotRunningError } from '../home.js';

/** The ledger stream for reading (never created here): for commands that rebuild from it. */
export async function openLedgerStream(natsUrl: string, stream: string): Promise<Ledger> {
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: natsUrl, name: 'jobledger-cli', timeout: 3000 });
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

/** A progress line on a terminal: rewritten in place, cleared by `done`. */
export function progressLine(io: { stderr: (t: string) => void }, enabled: boolean) {
  let shown = false;
  return {
    show(text: string) {
      if (!enabled) return;
      io.stderr(`\r\x1b[2K${text}`);
      shown = true;
    },
    done() {
      if (shown) io.stderr('\r\x1b[2K');
      shown = false;
    },
  };
}

export function percent(seq: number, fromSeq: number, target: number): string {
  const total = target - fromSeq + 1;
  if (total <= 0) return '100%';
  return `${Math.min(100, Math.floor(((seq - fromSeq + 1) / total) * 100))}%`;
}
