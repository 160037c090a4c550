#!/usr/bin/env node
import('../dist/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
    process.stderr.write('jobledger is not built yet: run `npm run build` (or infra/bootstrap.sh) in the repository root.\n');
    process.exit(2);
  }
  throw err;
});
