// Runs the CLI bundle (a CommonJS script) with V8's code cache, as Node 22's
// module.enableCompileCache() would (Node 20 has none for ES modules): the bytecode V8 compiled
// in an earlier run of the same command is handed back to it, so a short command spends its
// time running rather than parsing and compiling ~2 MB of JavaScript. One cache file per command
// (`run`, `runner`, …), written whole beside the bundle when the command exits the first time,
// or again when V8 refuses it (another Node or V8 flags); when the directory is read-only, the
// command simply runs without a cache. `npm run build` removes the bundle and its caches.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

export function runCached(file, command) {
  const name = typeof command === 'string' && /^[a-z][a-z-]{0,31}$/.test(command) ? command : 'other';
  const cacheFile = `${file}.${name}.cache`;
  let cachedData;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`, {
    filename: file,
    // No dynamic-import callback: the bundle has no import() left (scripts/bundle.mjs), and
    // one would not survive the code cache anyway.
    cachedData,
  });
  if (cachedData === undefined || script.cachedDataRejected === true) {
    process.once('exit', () => {
      const tmp = `${cacheFile}.${process.pid}`;
      try {
        writeFileSync(tmp, script.createCachedData());
        renameSync(tmp, cacheFile);
      } catch {
        // A read-only install: the next run compiles again, nothing else changes.
      }
    });
  }
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, path.dirname(file));
}
