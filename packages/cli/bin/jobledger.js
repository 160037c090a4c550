#!/usr/bin/env node
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runCached } from './code-cache.js';

// The bundle (`npm run build`) starts in a fraction of the time of the modules `tsc -b` writes;
// it is used only while it is newer than each build it was made from, so a `tsc -b` alone never
// leaves a stale command behind.
const mtime = (rel) => {
  try {
    return statSync(new URL(rel, import.meta.url)).mtimeMs;
  } catch {
    return undefined;
  }
};
const BUNDLE = '../dist/bundle/main.cjs';
const bundled = mtime(BUNDLE);
const fresh =
  bundled !== undefined &&
  [
    '../dist/.tsbuildinfo',
    '../../core/dist/.tsbuildinfo',
    '../../runtime/dist/.tsbuildinfo',
    '../../returners/dist/.tsbuildinfo',
    '../../../services/projector/dist/.tsbuildinfo',
  ].every((info) => (mtime(info) ?? 0) <= bundled);

if (fresh) {
  runCached(fileURLToPath(new URL(BUNDLE, import.meta.url)), process.argv[2]);
} else {
  import('../dist/main.js').catch((err) => {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
      process.stderr.write('jobledger is not built yet: run `npm run build` (or infra/bootstrap.sh) in the repository root.\n');
      process.exit(2);
    }
    throw err;
  });
}
