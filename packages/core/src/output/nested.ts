/** Salt's default `nested` outputter (salt/output/nested.py). */
import { compareCodePoints, isMapping, pyNumber, pyRstrip, pySplitLines } from './raw.js';

export interface NestedOptions {
  color: boolean;
  /** Salt's `nested_indent`: shifts the whole tree (and adds a top-level `----------`). */
  indent?: number;
  /** Non-zero turns keys, dashes and `|_` red. */
  retcode?: number;
}

export const COLORS = {
  cyan: '\x1b[0;36m',
  green: '\x1b[0;32m',
  lightYellow: '\x1b[0;1;33m',
  red: '\x1b[0;31m',
  reset: '\x1b[0;0m',
} as const;

export function renderNested(data: unknown, opts: NestedOptions): string {
  const paint = (code: string): string => (opts.color ? code : '');
  const failed = (opts.retcode ?? 0) !== 0;
  const keyColor = paint(failed ? COLORS.red : COLORS.cyan);
  const listColor = paint(failed ? COLORS.red : COLORS.green);
  const valueColor = paint(COLORS.lightYellow);
  const stringColor = paint(COLORS.green);
  const reset = paint(COLORS.reset);
  const lines: string[] = [];

  // Salt's ustring(): indent, colour, prefix, message, reset, suffix.
  const emit = (indent: number, color: string, msg: string, prefix = '', suffix = ''): void => {
    lines.push(' '.repeat(indent) + color + prefix + msg + reset + suffix);
  };

  const display = (value: unknown, indent: number, prefix: string): void => {
    if (value === null || value === undefined) emit(indent, valueColor, 'None', prefix);
    else if (typeof value === 'boolean') emit(indent, valueColor, value ? 'True' : 'False', prefix);
    else if (typeof value === 'number' || typeof value === 'bigint') emit(indent, valueColor, pyNumber(value), prefix);
    else if (typeof value === 'string') {
      pySplitLines(value).forEach((line, i) => {
        emit(indent, stringColor, line, i === 0 ? prefix : ' '.repeat(prefix.length));
      });
    } else if (Array.isArray(value)) {
      for (const item of value) {
        if (Array.isArray(item) || isMapping(item)) {
          emit(indent, listColor, '|_');
          display(item, indent + 2, Array.isArray(item) ? '- ' : '');
        } else {
          display(item, indent, '- ');
        }
      }
    } else if (isMapping(value)) {
      if (indent) emit(indent, keyColor, '----------');
      for (const key of Object.keys(value).sort(compareCodePoints)) {
        emit(indent, keyColor, key, prefix, ':');
        display(value[key], indent + 4, '');
      }
    }
  };

  display(data, opts.indent ?? 0, '');
  return pyRstrip(lines.join('\n'));
}
