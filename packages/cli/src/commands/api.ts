import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { homeLayout, resolveEndpoints } from '../home.js';
import { serviceEntry } from '../supervisor/services.js';

/**
 * `jobledger api` = Salt's `salt-api`: the HTTP API in the foreground, against the ledger of this
 * home (what `up`/`master` recorded, or JOBLEDGER_NATS_URL), with the API's own credentials;
 * its port, host and TLS come from master.yaml's `rest_cherrypy:`. Logs go to stderr. `up` and
 * `master` start it themselves when master.yaml has that section.
 */
export async function apiCommand(): Promise<number> {
  const endpoints = resolveEndpoints();
  const home = homeLayout();
  const apiCreds = path.join(home.root, 'pki', 'api.creds');
  const credsFile = process.env.JOBLEDGER_NATS_CREDS || (fs.existsSync(apiCreds) ? apiCreds : endpoints.auth.credsFile);
  const child = spawn(process.execPath, [serviceEntry('api')], {
    stdio: 'inherit',
    env: {
      ...process.env,
      JOBLEDGER_HOME: home.root,
      JOBLEDGER_NATS_URL: endpoints.natsUrl,
      JOBLEDGER_STREAM: endpoints.stream,
      ...(credsFile ? { JOBLEDGER_NATS_CREDS: credsFile } : {}),
      ...(endpoints.auth.caFile ? { JOBLEDGER_NATS_CA: endpoints.auth.caFile } : {}),
    },
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGTERM', forward);
  process.on('SIGINT', forward);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      process.off('SIGTERM', forward);
      process.off('SIGINT', forward);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}
