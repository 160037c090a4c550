import { mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { pino, type Logger } from 'pino';

/**
 * One root logger per service (`name` = service); to a file when `file` is given. The file is
 * opened before the logger exists, so a service that fails at once still writes its last lines
 * and can flush them on exit (an asynchronous open would not be ready yet).
 */
export function createLogger(name: string, opts: { file?: string; level?: string } = {}): Logger {
  let destination;
  if (opts.file) {
    mkdirSync(path.dirname(opts.file), { recursive: true });
    destination = pino.destination({ fd: openSync(opts.file, 'a'), sync: false });
  } else {
    destination = pino.destination(2);
  }
  return pino({ name, level: opts.level ?? 'info', redact: ['*.password', '*.pass', 'databaseUrl'] }, destination);
}

export type { Logger };
