import { masterEventSigner, openLedger, type NatsAuth } from '@jobledger/runtime';
import type * as Pki from '@jobledger/runtime/pki';

/** Appends the key events the ledger lacks (pki's `syncKeyEvents`), signed with the master's event key. */
export async function syncLedgerKeys(
  pki: typeof Pki,
  pkiDir: string,
  at: { natsUrl: string; stream: string; auth: NatsAuth },
  ids?: readonly string[],
): Promise<number> {
  const signer = masterEventSigner(pkiDir);
  if (!signer) return 0;
  const ledger = await openLedger({ natsUrl: at.natsUrl, stream: at.stream, name: 'jobledger-keys', auth: at.auth, ensure: false });
  try {
    return await pki.syncKeyEvents(ledger, new pki.KeyStore(pkiDir), signer, ids ? { ids } : {});
  } finally {
    await ledger.nc.close().catch(() => undefined);
  }
}
