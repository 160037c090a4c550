import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createAccount, createOperator, createUser, fromPublic, fromSeed, type KeyPair } from '@nats-io/nkeys';
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt';
import { agentPermissions, rolePermissions, type Role, type SubjectPermissions } from '@jobledger/core';
import { readText, writePublicFile, writeSecretFile } from './secret-files.js';
import { createCertificateAuthority, createServerCertificate, certificateFingerprint } from './tls-certs.js';

/**
 * The master's keys, as NATS's decentralised JWT auth wants them: an operator, the system
 * account and the ledger's account (the master's account key signs every user), plus the
 * master's own CA and the server certificate it signs. Everything lives in `<home>/pki/`;
 * seeds and private keys are 0600. Role credentials are standard `.creds` files.
 */

export type MasterRole = Exclude<Role, 'agent'>;
export const MASTER_ROLES: readonly MasterRole[] = ['admin', 'dispatcher', 'projector', 'cli', 'keyserver', 'api'];

export interface MasterPki {
  dir: string;
  operatorJwtFile: string;
  systemAccount: string;
  account: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** Salt's master fingerprint: of the CA certificate. */
  fingerprint: string;
}

export function pkiFiles(dir: string) {
  return {
    operatorSeed: path.join(dir, 'operator.nk'),
    operatorJwt: path.join(dir, 'operator.jwt'),
    systemSeed: path.join(dir, 'system-account.nk'),
    accountSeed: path.join(dir, 'account.nk'),
    revocations: path.join(dir, 'revocations.json'),
    ca: path.join(dir, 'ca.pem'),
    caKey: path.join(dir, 'ca.key'),
    serverCert: path.join(dir, 'server.pem'),
    serverKey: path.join(dir, 'server.key'),
    resolverDir: path.join(dir, 'jwt'),
    clusterSecret: path.join(dir, 'cluster.secret'),
    creds: (role: MasterRole | 'system') => path.join(dir, `${role}.creds`),
  };
}

function seedKey(file: string, create: () => KeyPair): KeyPair {
  const seed = readText(file);
  if (seed !== undefined) return fromSeed(new TextEncoder().encode(seed.trim()));
  const kp = create();
  writeSecretFile(file, new TextDecoder().decode(kp.getSeed()) + '\n');
  return kp;
}

const UNLIMITED = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
const JETSTREAM = {
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
  max_ack_pending: -1,
  mem_max_stream_bytes: -1,
  disk_max_stream_bytes: -1,
  max_bytes_required: false,
};

/** Revoked user keys → the second (UNIX time) before which their JWTs are void. */
export function readRevocations(dir: string): Record<string, number> {
  const text = readText(pkiFiles(dir).revocations);
  return text ? (JSON.parse(text) as Record<string, number>) : {};
}

/** Voids every JWT of the user key issued up to now (its open connections are closed by the server). */
export function addRevocation(dir: string, userPublicKey: string, at = Math.floor(Date.now() / 1000)): void {
  const all = readRevocations(dir);
  all[userPublicKey] = at;
  writeSecretFile(pkiFiles(dir).revocations, JSON.stringify(all, null, 2) + '\n');
}

function keys(dir: string) {
  const f = pkiFiles(dir);
  return {
    operator: seedKey(f.operatorSeed, createOperator),
    system: seedKey(f.systemSeed, createAccount),
    account: seedKey(f.accountSeed, createAccount),
  };
}

/** The ledger account's JWT as of now: JetStream enabled, with every revocation. */
export async function accountJwt(dir: string): Promise<string> {
  const k = keys(dir);
  return encodeAccount(
    'LEDGER',
    k.account,
    { limits: { ...UNLIMITED, ...JETSTREAM }, revocations: readRevocations(dir) },
    { signer: k.operator },
  );
}

export async function systemAccountJwt(dir: string): Promise<string> {
  const k = keys(dir);
  return encodeAccount('SYS', k.system, { limits: UNLIMITED }, { signer: k.operator });
}

function userClaims(p: SubjectPermissions) {
  return {
    pub: { allow: p.pub.allow, deny: p.pub.deny },
    sub: { allow: p.sub.allow, deny: p.sub.deny },
    // Replies may come in chunks (the runner's), within five minutes of the request.
    ...(p.allowResponses ? { resp: { max: -1, ttl: 300_000_000_000 } } : {}),
    ...UNLIMITED,
  };
}

/** Not before the last revocation of that key: a JWT issued in the same second would be void. */
async function afterRevocation(dir: string, userPublicKey: string): Promise<void> {
  const revoked = readRevocations(dir)[userPublicKey];
  if (revoked === undefined) return;
  const wait = (revoked + 1) * 1000 - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}

/** A user JWT for an agent's own key, allowing its accepted ids only. */
export async function issueAgentJwt(dir: string, o: { userPublicKey: string; ids: readonly string[]; stream: string }): Promise<string> {
  const k = keys(dir);
  await afterRevocation(dir, o.userPublicKey);
  const perms = agentPermissions({ stream: o.stream, group: agentGroup(o.userPublicKey), ids: o.ids, userPublicKey: o.userPublicKey });
  return encodeUser(`agent ${o.ids.join(',')}`.slice(0, 200), fromPublic(o.userPublicKey), k.account, userClaims(perms));
}

/** The consumer (and group) name of the agent process holding that key. */
export function agentGroup(userPublicKey: string): string {
  return `agent-${createHash('sha256').update(userPublicKey).digest('hex').slice(0, 16)}`;
}

/**
 * Creates what is missing (operator, accounts, CA — once; the server certificate and the role
 * credentials at every start, for the current names and stream) and returns where it is.
 */
export async function ensureMasterPki(dir: string, o: { stream: string; hosts: readonly string[] }): Promise<MasterPki> {
  const f = pkiFiles(dir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  const k = keys(dir);
  writePublicFile(f.operatorJwt, await encodeOperator('jobledger', k.operator, { system_account: k.system.getPublicKey() }));

  let caCert = readText(f.ca);
  let caKey = readText(f.caKey);
  if (caCert === undefined || caKey === undefined) {
    const ca = await createCertificateAuthority('jobledger master CA');
    writeSecretFile(f.caKey, ca.key);
    writePublicFile(f.ca, ca.cert);
    caCert = ca.cert;
    caKey = ca.key;
  }
  const server = await createServerCertificate({ cert: caCert, key: caKey }, o.hosts);
  writeSecretFile(f.serverKey, server.key);
  writePublicFile(f.serverCert, server.cert);

  for (const role of MASTER_ROLES) {
    const user = seedKey(path.join(dir, `${role}.nk`), createUser);
    const jwt = await encodeUser(role, user, k.account, userClaims(rolePermissions(role, o.stream, user.getPublicKey())));
    writeSecretFile(f.creds(role), fmtCreds(jwt, user));
  }
  // The master's event key: the dispatcher, the keyserver and the `key` commands sign with it.
  const events = seedKey(path.join(dir, 'events.nk'), createUser);
  writePublicFile(path.join(dir, 'events.pub'), events.getPublicKey() + '\n');
  const sysUser = seedKey(path.join(dir, 'system.nk'), createUser);
  writeSecretFile(f.creds('system'), fmtCreds(await encodeUser('system', sysUser, k.system, UNLIMITED), sysUser));

  return {
    dir,
    operatorJwtFile: f.operatorJwt,
    systemAccount: k.system.getPublicKey(),
    account: k.account.getPublicKey(),
    caFile: f.ca,
    serverCertFile: f.serverCert,
    serverKeyFile: f.serverKey,
    fingerprint: certificateFingerprint(caCert),
  };
}

/**
 * The nats-server configuration that makes the server enforce all of it: operator mode, the full
 * resolver, TLS. Each node of a cluster keeps its own resolver directory (they sync each other).
 */
export async function natsSecurityBlock(pki: MasterPki, o: { resolverDir?: string } = {}): Promise<string> {
  const q = JSON.stringify;
  const resolverDir = o.resolverDir ?? pkiFiles(pki.dir).resolverDir;
  fs.mkdirSync(resolverDir, { recursive: true, mode: 0o700 });
  return [
    `operator: ${q(pki.operatorJwtFile)}`,
    `system_account: ${pki.systemAccount}`,
    `resolver: { type: full, dir: ${q(resolverDir)}, allow_delete: false, interval: "2m", timeout: "3s" }`,
    `resolver_preload: {`,
    `  ${pki.systemAccount}: ${q(await systemAccountJwt(pki.dir))}`,
    `  ${pki.account}: ${q(await accountJwt(pki.dir))}`,
    `}`,
    `tls { cert_file: ${q(pki.serverCertFile)}, key_file: ${q(pki.serverKeyFile)}, timeout: 3 }`,
  ].join('\n');
}

/** The password the nodes of a cluster give each other on their routes (made once, 0600). */
export function clusterRouteSecret(dir: string): string {
  const file = pkiFiles(dir).clusterSecret;
  const existing = readText(file)?.trim();
  if (existing) return existing;
  const secret = randomBytes(24).toString('base64url');
  writeSecretFile(file, secret + '\n');
  return secret;
}
