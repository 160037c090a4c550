import fs from 'node:fs';
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { decode as decodeJwt } from '@nats-io/jwt';
import { inboxPrefix } from '@jobledger/core';

/** How a process proves who it is to nats-server and checks the server: a `.creds` file and the master's CA. */
export interface NatsAuth {
  credsFile?: string;
  caFile?: string;
}

/** `JOBLEDGER_NATS_CREDS` / `JOBLEDGER_NATS_CA`. */
export function natsAuthFromEnv(env: NodeJS.ProcessEnv): NatsAuth {
  return { credsFile: env.JOBLEDGER_NATS_CREDS || undefined, caFile: env.JOBLEDGER_NATS_CA || undefined };
}

/** The user public key a `.creds` file's JWT is issued to. */
export function credsUserKey(creds: string): string {
  const jwt = /-----BEGIN NATS USER JWT-----\s*([^\s-][^\s]*)\s*-+END NATS USER JWT/.exec(creds)?.[1];
  if (!jwt) throw new Error('not a NATS .creds file (no user JWT)');
  return decodeJwt(jwt).sub;
}

/** Connection options for the credentials: the authenticator, the CA, and the user's own inbox prefix (its permissions allow only that). */
export function natsAuthOptions(auth: NatsAuth | undefined): Partial<ConnectionOptions> {
  const out: Partial<ConnectionOptions> = {};
  if (auth?.credsFile) {
    const creds = fs.readFileSync(auth.credsFile, 'utf8');
    out.authenticator = credsAuthenticator(new TextEncoder().encode(creds));
    out.inboxPrefix = inboxPrefix(credsUserKey(creds));
  }
  if (auth?.caFile) out.tls = { caFile: auth.caFile };
  return out;
}

/** `JOBLEDGER_NATS_URL` may list the nodes of a cluster: `tls://a:4222,tls://b:4222`. */
export function natsServerList(servers: string | string[]): string[] {
  return (Array.isArray(servers) ? servers : [servers])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * Connects with the given credentials (none: an open server, as in the tests), to any of the
 * servers listed; on a lost connection the client goes on to the others (and the ones the
 * cluster announces).
 */
export async function connectNats(
  opts: Partial<ConnectionOptions> & { servers: string | string[]; auth?: NatsAuth },
): Promise<NatsConnection> {
  const { auth, servers, ...rest } = opts;
  return connect({ ...rest, servers: natsServerList(servers), ...natsAuthOptions(auth) });
}

/**
 * Pull options for a consumer that must go on through a lost server: short pulls and a
 * heartbeat a second, so a pull lost with its node (a cluster node killed, the consumer's leader
 * moved, the consumer deleted) is noticed within about 2 s and pulled again (an ordered consumer
 * is recreated from where it was), instead of after the client's default 30 s.
 */
export const SHORT_PULLS = { expires: 5_000, idle_heartbeat: 1_000 } as const;
