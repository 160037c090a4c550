import fs from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's chromium, driven by playwright-core (no browser download): `JOBLEDGER_CHROMIUM`, or
 * the first of the usual paths. `infra/bootstrap.sh` installs it.
 */
export function chromiumPath(): string {
  const candidates = [process.env.JOBLEDGER_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(
    (p): p is string => p !== undefined && p !== '',
  );
  const found = candidates.find((p) => fs.existsSync(p));
  if (found === undefined)
    throw new Error(`no chromium at ${candidates.join(', ')}: run infra/bootstrap.sh (it installs Debian's chromium)`);
  return found;
}

export function launchChromium(): Promise<Browser> {
  // --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}
