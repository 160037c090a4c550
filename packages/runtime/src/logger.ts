import { pino, type Logger } from 'pino';

/** One root logger per service (`name` = service); to a file when `file` is given. */
export function createLogger(name: string, opts: { file?: string; level?: string } = {}): Logger {
  const destination = opts.file ? pino.destination({ dest: opts.file, mkdir: true, sync: false }) : pino.destination(2);
  return pino({ name, level: opts.level ?? 'info', redact: ['*.password', '*.pass', 'databaseUrl'] }, destination);
}

export type { Logger };
