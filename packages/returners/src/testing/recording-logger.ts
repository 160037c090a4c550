// A ReturnerLogger that keeps what it was told, for tests that check Salt's log lines.
import type { ReturnerLogger } from '@jobledger/core';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: object;
  msg: string | undefined;
}

export interface RecordingLogger extends ReturnerLogger {
  lines: LogLine[];
  messages(level?: LogLine['level']): string[];
}

export function recordingLogger(): RecordingLogger {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg?: string) => {
    lines.push({ level, obj, msg });
  };
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    messages: (level) => lines.filter((l) => level === undefined || l.level === level).map((l) => l.msg ?? ''),
  };
}
