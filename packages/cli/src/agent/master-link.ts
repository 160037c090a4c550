import https from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { AuthRequest } from '@jobledger/runtime/pki';

/**
 * The agent's side of Salt's master auth: the keyserver (the master's `ret_port`) over HTTPS,
 * verified against the master's CA, which the agent pins (Salt's `master_finger`) or trusts on
 * first use and keeps in its home.
 */

export interface AuthAnswer {
  states: Record<string, 'accepted' | 'pending' | 'rejected' | 'denied'>;
  group: string;
  jwt?: string;
}

export class MasterLinkError extends Error {
  override readonly name = 'MasterLinkError';
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The root of the chain the server presents (its CA), as PEM. */
export function fetchMasterCa(url: URL, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'HEAD', rejectUnauthorized: false, timeout: timeoutMs, agent: false }, (res) => {
      res.resume();
    });
    req.once('socket', (socket) => {
      socket.once('secureConnect', () => {
        let cert = (socket as TLSSocket).getPeerCertificate(true) as PeerCertificate & { issuerCertificate?: PeerCertificate };
        for (let i = 0; i < 8 && cert.issuerCertificate && cert.issuerCertificate !== cert && cert.issuerCertificate.raw; i++) {
          if (cert.issuerCertificate.fingerprint256 === cert.fingerprint256) break;
          cert = cert.issuerCertificate;
        }
        const pem = new X509Certificate(cert.raw).toString();
        resolve(pem);
        req.destroy();
      });
    });
    req.once('timeout', () => req.destroy(new Error('timed out')));
    req.once('error', (err) => reject(new MasterLinkError(`cannot reach the master at ${url.host}: ${err.message}`, true, { cause: err })));
    req.end();
  });
}

/** Posts the signed request; the answer may wait up to `wait` seconds for an operator's decision. */
export function authenticate(url: URL, ca: string, body: AuthRequest & { wait: number }): Promise<AuthAnswer> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL('/v1/auth', url),
      {
        method: 'POST',
        ca,
        timeout: (body.wait + 20) * 1000,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: { error?: string } & Partial<AuthAnswer>;
          try {
            json = JSON.parse(text) as typeof json;
          } catch {
            return reject(new MasterLinkError(`the master answered ${res.statusCode} with no JSON`, true));
          }
          if (res.statusCode !== 200 || !json.states) {
            return reject(
              new MasterLinkError(
                `the master refused the request (${res.statusCode}): ${json.error ?? text}`,
                (res.statusCode ?? 500) >= 500,
              ),
            );
          }
          resolve(json as AuthAnswer);
        });
      },
    );
    req.once('timeout', () => req.destroy(new Error('timed out')));
    req.once('error', (err) => reject(new MasterLinkError(`cannot reach the master at ${url.host}: ${err.message}`, true, { cause: err })));
    req.end(payload);
  });
}
