// Runs the CLI bundle (a CommonJS script) with V8's code cache, as Node 22's
// module.enableCompileCache() would (Node 20 has none for ES modules): the bytecode V8 compiled
// in an earlier run of the same command is handed back to it, so a short command spends its
// time running rather than parsing and compiling ~2 MB of JavaScript.
//
// One cache file per command (`run`, `runner`, …; anything else shares `other`), named after
// the bundle's size and mtime: V8 itself checks only the source's length, so a cache of an
// earlier build is never offered to a new one. It is written whole (a fresh temporary file,
// then renamed) when the command exits the first time, or again when V8 refuses it (another
// Node, other V8 flags), and only while the bundle is still the one that ran. A cache is code:
// it lives beside the bundle, in a directory only those who may change the bundle can write;
// where the directory is not writable (an install owned by another user), there is no cache and
// the command simply compiles. `npm run build` removes the bundle and its caches.
import { accessSync, constants, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

const COMMANDS = new Set(['run', 'runner', 'key', 'up', 'down', 'master', 'agent', 'api', 'replay', 'audit', 'db', 'help']);

const identity = (file) => {
  const st = statSync(file);
  return `${st.size}-${Math.trunc(st.mtimeMs)}`;
};

function writable(dir) {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function runCached(file, command) {
  const dir = path.dirname(file);
  const built = identity(file);
  const cacheFile = `${file}.${COMMANDS.has(command) ? command : 'other'}.${built}.cache`;
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
  if ((cachedData === undefined || script.cachedDataRejected === true) && writable(dir)) {
    process.once('exit', () => {
      const tmp = `${cacheFile}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        if (identity(file) !== built) return; // rebuilt while this command ran
        writeFileSync(tmp, script.createCachedData(), { flag: 'wx', mode: 0o644 });
        renameSync(tmp, cacheFile);
      } catch {
        try {
          unlinkSync(tmp);
        } catch {
          // never written
        }
      }
    });
  }
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dir);
}
