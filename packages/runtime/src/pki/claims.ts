import { connectNats } from '../nats-connect.js';
import { accountJwt, pkiFiles } from './master-pki.js';

export class AccountUpdateError extends Error {
  override readonly name = 'AccountUpdateError';
  readonly retryable = true;
}

/**
 * Hands the ledger account's current JWT (with every revocation) to nats-server through the
 * system account: the server then closes the revoked users' connections and refuses them.
 */
export async function pushAccountJwt(o: { natsUrl: string; pkiDir: string }): Promise<void> {
  const f = pkiFiles(o.pkiDir);
  const nc = await connectNats({
    servers: o.natsUrl,
    name: 'jobledger-keys',
    timeout: 5000,
    auth: { credsFile: f.creds('system'), caFile: f.ca },
  });
  try {
    const reply = await nc.request('$SYS.REQ.CLAIMS.UPDATE', await accountJwt(o.pkiDir), { timeout: 5000 });
    const body = JSON.parse(reply.string()) as {
      data?: { code?: number; message?: string };
      error?: { code?: number; description?: string };
    };
    if (body.error || body.data?.code !== 200) {
      throw new AccountUpdateError(
        `nats-server refused the account update: ${body.error?.description ?? body.data?.message ?? reply.string()}`,
      );
    }
  } finally {
    await nc.close();
  }
}
