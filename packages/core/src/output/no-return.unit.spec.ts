import { describe, expect, it } from 'vitest';
import { renderNoReturn } from './no-return.js';

const message =
  'Minion did not return. [No response]\n' +
  'The minions may not have all finished running and any remaining minions will return upon completion. ' +
  'To look up the return data for this job later, run the following command:\n\n' +
  'salt-run jobs.lookup_jid 20261125181424443941';

describe('renderNoReturn', () => {
  it('indents the message by four and keeps the empty line as four spaces', () => {
    expect(renderNoReturn({ ghost: message }, { color: false })).toBe(
      [
        'ghost:',
        '    Minion did not return. [No response]',
        '    The minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:',
        '    ',
        '    salt-run jobs.lookup_jid 20261125181424443941',
      ].join('\n'),
    );
  });

  it('paints the id cyan and the message red (colour before the indent)', () => {
    expect(renderNoReturn({ ghost: 'Minion did not return. [Not connected]' }, { color: true })).toBe(
      '\x1b[0;36mghost\x1b[0;0m:\n\x1b[0;31m    Minion did not return. [Not connected]\x1b[0;0m',
    );
  });

  it('renders nothing for an empty mapping', () => {
    expect(renderNoReturn({}, { color: false })).toBe('');
  });
});
