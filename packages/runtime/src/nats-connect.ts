import crypto from 'node:crypto';
import fs from 'node:fs';
import { connect, type Authenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { inboxPrefix } from '@jobledger/core';
import { credsSeed, nkeyPrivateKey, SigningKeyError } from './event-signing.js';

/** How a process proves who it is to nats-server and checks the server: a `.creds` file and the master's CA. */
export interface NatsAuth {
  credsFile?: string;
  caFile?: string;
}

/** `JOBLEDGER_NATS_CREDS` / `JOBLEDGER_NATS_CA`. */
export function natsAuthFromEnv(env: NodeJS.ProcessEnv): NatsAuth {
  return { credsFile: env.JOBLEDGER_NATS_CREDS || undefined, caFile: env.JOBLEDGER_NATS_CA || undefined };
}

function credsJwt(creds: string): string {
  const jwt = /-----BEGIN NATS USER JWT-----\s*([^\s-][^\s]*)\s*-+END NATS USER JWT/.exec(creds)?.[1];
  if (!jwt) throw new Error('not a NATS .creds file (no user JWT)');
  return jwt;
}

/**
 * The user public key a JWT is issued to (its `sub` claim), read without checking the JWT's
 * signature: nats-server checks it at every connect. @nats-io/jwt's `decode` verifies it in pure
 * JavaScript, about 30 ms per call, most of a short command's start.
 */
function jwtSubject(jwt: string): string {
  const payload = jwt.split('.')[1];
  let sub: unknown;
  try {
    sub = (JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as { sub?: unknown }).sub;
  } catch (err) {
    throw new Error('not a NATS .creds file (the user JWT cannot be read)', { cause: err });
  }
  if (typeof sub !== 'string' || sub === '') throw new Error('not a NATS .creds file (the user JWT names no user)');
  return sub;
}

/** The user public key a `.creds` file's JWT is issued to. */
export function credsUserKey(creds: string): string {
  return jwtSubject(credsJwt(creds));
}

/**
 * What nats.js's `credsAuthenticator` answers (the JWT, the user's public key, the server's
 * nonce signed with the seed), signed by node's ed25519: nats.js signs in pure JavaScript, about
 * 100 ms of every connect, which is most of a short command's start.
 */
export function credsNodeAuthenticator(creds: string): Authenticator {
  const jwt = credsJwt(creds);
  const nkey = jwtSubject(jwt);
  const seed = credsSeed(creds);
  if (seed === undefined) throw new SigningKeyError('not a NATS .creds file (no user nkey seed)');
  const key = nkeyPrivateKey(seed);
  return (nonce?: string) => ({
    jwt,
    nkey,
    sig: nonce ? crypto.sign(null, Buffer.from(nonce), key).toString('base64') : '',
  });
}

/** Connection options for the credentials: the authenticator, the CA, and the user's own inbox prefix (its permissions allow only that). */
export function natsAuthOptions(auth: NatsAuth | undefined): Partial<ConnectionOptions> {
  const out: Partial<ConnectionOptions> = {};
  if (auth?.credsFile) {
    const creds = fs.readFileSync(auth.credsFile, 'utf8');
    out.authenticator = credsNodeAuthenticator(creds);
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
 *
 * `noAsyncTraces`: nats.js otherwise builds an Error with a stack for every request and
 * publish, in case it fails (about a tenth of a busy agent's CPU); the errors keep their message.
 */
export async function connectNats(
  opts: Partial<ConnectionOptions> & { servers: string | string[]; auth?: NatsAuth },
): Promise<NatsConnection> {
  const { auth, servers, ...rest } = opts;
  return connect({ noAsyncTraces: true, ...rest, servers: natsServerList(servers), ...natsAuthOptions(auth) });
}

/**
 * Pull options for a consumer that must go on through a lost server: short pulls and a
 * heartbeat a second, so a pull lost with its node (a cluster node killed, the consumer's leader
 * moved, the consumer deleted) is noticed within about 2 s and pulled again (an ordered consumer
 * is recreated from where it was), instead of after the client's default 30 s.
 */
export const SHORT_PULLS = { expires: 5_000, idle_heartbeat: 1_000 } as const;
