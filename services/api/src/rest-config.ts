import path from 'node:path';
import { z } from 'zod';
import { AclConfigError, parseExternalAuth, zodIssuesText, type ExternalAuth } from '@jobledger/core';
import { ConfigError, type ConfigMapping } from '@jobledger/runtime';

/**
 * What the API takes from master.yaml: Salt's `rest_cherrypy:` section (salt-api's own
 * settings), `external_auth:` (who may log in and run what), `token_expire`.
 *
 *     rest_cherrypy:
 *       port: 8000
 *       host: 127.0.0.1          # default loopback (Salt's is 0.0.0.0)
 *       disable_ssl: True        # else ssl_crt and ssl_key
 *       app: /srv/ui/index.html  # a web app served beside the API, as salt-api does
 *       static: /srv/ui/static
 *       static_path: /static
 */
export interface RestConfig {
  port: number;
  host: string;
  tls?: { cert: string; key: string };
  app?: string;
  appPath: string;
  static?: string;
  staticPath: string;
  /** Seconds a login token lives (Salt's `token_expire`, 12 h). */
  tokenExpire: number;
  /** Requests per minute and client address before 429 (not in Salt: brute-force protection of /login). */
  rateLimit: number;
  externalAuth: ExternalAuth;
  /** Salt's `permissive_acl`: the `'*'` rules apply to every eauth user. */
  permissiveAcl: boolean;
}

const pathPrefix = z
  .string()
  .regex(/^\/[^\s]*$/, 'must be a URL path starting with /')
  .transform((p) => (p.length > 1 ? p.replace(/\/+$/, '') : p));

const restCherrypy = z.looseObject({
  port: z.coerce.number().int().min(0).max(65535),
  host: z.string().min(1).default('127.0.0.1'),
  disable_ssl: z.boolean().default(false),
  ssl_crt: z.string().min(1).optional(),
  ssl_key: z.string().min(1).optional(),
  app: z.string().min(1).optional(),
  app_path: pathPrefix.default('/app'),
  static: z.string().min(1).optional(),
  static_path: pathPrefix.default('/static'),
  rate_limit: z.coerce.number().int().positive().default(600),
});

/** The API's settings from a parsed master.yaml, or undefined when it has no `rest_cherrypy:` section. */
export function parseRestConfig(doc: ConfigMapping, file: string): RestConfig | undefined {
  const raw = doc.rest_cherrypy;
  if (raw === undefined || raw === null) return undefined;
  const parsed = restCherrypy.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`rest_cherrypy in ${file}: ${zodIssuesText(parsed.error)}`);
  const r = parsed.data;
  const base = path.dirname(file);
  let tls: RestConfig['tls'];
  if (!r.disable_ssl) {
    if (r.ssl_crt === undefined || r.ssl_key === undefined) {
      throw new ConfigError(`rest_cherrypy in ${file}: set ssl_crt and ssl_key, or disable_ssl: True`);
    }
    tls = { cert: path.resolve(base, r.ssl_crt), key: path.resolve(base, r.ssl_key) };
  }
  const tokenExpire = doc.token_expire === undefined || doc.token_expire === null ? 43200 : Number(doc.token_expire);
  if (!Number.isFinite(tokenExpire) || tokenExpire <= 0) throw new ConfigError(`token_expire in ${file} must be a number of seconds`);
  let externalAuth: ExternalAuth;
  try {
    externalAuth = parseExternalAuth(doc);
  } catch (cause) {
    if (cause instanceof AclConfigError) throw new ConfigError(`${file}: ${cause.message}`, { cause });
    throw cause;
  }
  return {
    port: r.port,
    host: r.host,
    ...(tls ? { tls } : {}),
    ...(r.app !== undefined ? { app: path.resolve(base, r.app) } : {}),
    appPath: r.app_path,
    ...(r.static !== undefined ? { static: path.resolve(base, r.static) } : {}),
    staticPath: r.static_path,
    tokenExpire,
    rateLimit: r.rate_limit,
    externalAuth,
    permissiveAcl: doc.permissive_acl === true,
  };
}
