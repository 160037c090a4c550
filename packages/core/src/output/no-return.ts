/** Salt's `no_return` outputter (salt/output/no_return.py), used for minions that did not return. */
import { COLORS } from './nested.js';
import { compareCodePoints, isMapping, pyRstrip } from './raw.js';

export function renderNoReturn(data: unknown, opts: { color: boolean }): string {
  const [cyan, red, reset] = opts.color ? [COLORS.cyan, COLORS.red, COLORS.reset] : ['', '', ''];
  let out = '';
  const display = (value: unknown, indent: number): void => {
    const pad = ' '.repeat(indent);
    if (typeof value === 'string') {
      // split('\n'), not splitlines(): an empty line keeps its indent (four spaces).
      for (const line of value.split('\n')) out += `${red}${pad}${line}${reset}\n`;
    } else if (isMapping(value)) {
      for (const key of Object.keys(value).sort(compareCodePoints)) {
        out += `${cyan}${pad}${key}${reset}:\n`;
        display(value[key], indent + 4);
      }
    }
  };
  display(data, 0);
  return pyRstrip(out);
}
