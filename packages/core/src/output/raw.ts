/**
 * Salt's `raw` outputter — Python `str()` of the structure — plus the small
 * Python emulation helpers the other outputters share.
 */

/** Python `str.splitlines()`: no trailing empty line, `''` → `[]`. */
export function pySplitLines(s: string): string[] {
  // eslint-disable-next-line no-control-regex -- Python also splits on \x1c-\x1e
  const lines = s.split(/\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/);
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Python `str.rstrip()` (Python's idea of whitespace). */
export function pyRstrip(s: string): string {
  // eslint-disable-next-line no-control-regex -- Python whitespace includes \x1c-\x1f
  return s.replace(/[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/, '');
}

/** Compare strings by code point, as Python's `sorted()` does (JS `<` compares UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length) {
    const ca = a.codePointAt(i) ?? 0;
    const cb = b.codePointAt(i) ?? 0;
    if (ca !== cb) return ca - cb;
    i += ca > 0xffff ? 2 : 1;
  }
  return a.length - b.length;
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Python `repr()` of a number; integral values print as ints (`1`, never `1.0`). */
export function pyNumber(n: number | bigint): string {
  if (typeof n === 'bigint') return n.toString();
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (Number.isInteger(n)) return BigInt(n).toString();
  const [mantissa, exp] = n.toExponential().split('e');
  const e = Number(exp);
  // Python switches to exponent form below 1e-4 (JS only below 1e-6).
  if (e < -4) return `${mantissa}e-${String(-e).padStart(2, '0')}`;
  return String(n);
}

const NON_PRINTABLE = /^[\p{C}\p{Z}]$/u;

/** Python `repr()` of a str. */
export function pyStringRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch !== ' ' && NON_PRINTABLE.test(ch)) {
      const hex = cp.toString(16);
      if (cp < 0x100) out += '\\x' + hex.padStart(2, '0');
      else if (cp < 0x10000) out += '\\u' + hex.padStart(4, '0');
      else out += '\\U' + hex.padStart(8, '0');
    } else out += ch;
  }
  return out + quote;
}

/** Python `repr()` of a JSON-like value. */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number' || typeof value === 'bigint') return pyNumber(value);
  if (typeof value === 'string') return pyStringRepr(value);
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (isMapping(value)) {
    const items = Object.entries(value).map(([k, v]) => `${pyStringRepr(k)}: ${pyRepr(v)}`);
    return `{${items.join(', ')}}`;
  }
  // Only symbols and functions are left (never in JSON data).
  return pyStringRepr(typeof value === 'symbol' || typeof value === 'function' ? value.toString() : '');
}

/** Python `str()`: a str is itself, anything else is its `repr()`. */
export function pyStr(value: unknown): string {
  return typeof value === 'string' ? value : pyRepr(value);
}

/** The `raw` outputter. */
export function renderRaw(data: unknown): string {
  return pyRstrip(pyStr(data));
}
