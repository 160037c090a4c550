/** Salt's `txt` outputter (salt/output/txt.py): `key: line` per line of each value. */
import { isMapping, pyRepr, pyRstrip, pySplitLines, pyStr } from './raw.js';

export function renderTxt(data: unknown): string {
  if (!isMapping(data)) return pyRstrip(typeof data === 'string' ? data : pyRepr(data));
  let out = '';
  for (const [key, value] of Object.entries(data)) {
    if (typeof value === 'string') for (const line of pySplitLines(value)) out += `${key}: ${line}\n`;
    else out += `${key}: ${pyStr(value)}\n`;
  }
  return pyRstrip(out);
}
