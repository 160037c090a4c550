/** Salt's `json` outputter: Python `json.dumps(data, indent=…, ensure_ascii=False)`. */
import { isMapping, pyNumber, pyRepr } from './raw.js';

/** `indent` defaults to 4; a negative indent gives one line with Python's `, ` / `: ` separators. */
export function renderJson(data: unknown, indent = 4): string {
  const dump = (value: unknown, depth: number): string => {
    if (value === null || value === undefined) return 'null';
    if (typeof value === 'boolean') return String(value);
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'number') {
      if (Number.isNaN(value)) return 'NaN';
      if (!Number.isFinite(value)) return value > 0 ? 'Infinity' : '-Infinity';
      return pyNumber(value);
    }
    if (typeof value === 'string') return JSON.stringify(value);
    const isList = Array.isArray(value);
    const items = isList
      ? value.map((v) => dump(v, depth + 1))
      : isMapping(value)
        ? Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${dump(v, depth + 1)}`)
        : null;
    if (items === null) return JSON.stringify(pyRepr(value)); // Salt: default=repr
    const [open, close] = isList ? ['[', ']'] : ['{', '}'];
    if (items.length === 0) return open + close;
    if (indent < 0) return open + items.join(', ') + close;
    const pad = (n: number): string => '\n' + ' '.repeat(indent * n);
    return open + pad(depth + 1) + items.join(',' + pad(depth + 1)) + pad(depth) + close;
  };
  return dump(data, 0);
}
