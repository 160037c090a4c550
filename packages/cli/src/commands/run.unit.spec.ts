import { describe, expect, it } from 'vitest';
import { metadataArg, returnKwargsArg, RunTexts, summaryText } from './run.js';

describe('--summary (salt/cli/salt.py _print_returns_summary)', () => {
  it('prints the block of the transcript after two empty lines', () => {
    const text = summaryText(
      [
        { id: '192.168.153.142', value: true, retcode: 0 },
        { id: '192.168.153.141', value: true, retcode: 0 },
      ],
      true,
    );
    expect(text).toBe(
      [
        '',
        '',
        '-------------------------------------------',
        'Summary',
        '-------------------------------------------',
        '# of minions targeted: 2',
        '# of minions returned: 2',
        '# of minions that did not return: 0',
        '# of minions with errors: 0',
        '-------------------------------------------',
        '',
      ].join('\n'),
    );
  });

  it('counts agents that did not return and failures; -v lists them', () => {
    const returns = [
      { id: 'a', value: 'hi', retcode: 0 },
      { id: 'b', value: 'x', retcode: 3 },
      { id: 'ghost', value: RunTexts.noResponse('20261125181424443941'), retcode: 1, noReturn: true as const },
      { id: 'c', value: RunTexts.noResponse('20261125181424443941'), retcode: 1, noReturn: true as const },
    ];
    const lines = summaryText(returns, true).split('\n');
    expect(lines.slice(5)).toEqual([
      '# of minions targeted: 4',
      '# of minions returned: 2',
      '# of minions that did not return: 2',
      '# of minions with errors: 1',
      'Minions not responding: ghost c',
      'Minions with failures: b',
      '-------------------------------------------',
      '',
    ]);
    expect(summaryText(returns, false)).not.toContain('Minions not responding');
  });
});

describe('texts', () => {
  it('Ctrl-C names the jid and how to look the job up later', () => {
    expect(RunTexts.interrupted('20261125181424443941')).toBe(
      "\nThis job's jid is: 20261125181424443941\nExiting gracefully on Ctrl-c\n" +
        'The minions may not have all finished running and any remaining minions will return upon completion. ' +
        'To look up the return data for this job later, run the following command:\n\n' +
        'jobledger runner jobs.lookup_jid 20261125181424443941',
    );
    expect(RunTexts.interrupted()).toBe('\nExiting gracefully on Ctrl-c');
    expect(RunTexts.missingTarget).toBe('\nCannot execute command without defining a target.\n\n');
  });
});

describe('--metadata', () => {
  it('takes a YAML or JSON mapping', () => {
    expect(metadataArg('{"ticket": "OPS-1", "n": 2}')).toEqual({ ticket: 'OPS-1', n: 2 });
    expect(metadataArg('{ticket: OPS-1}')).toEqual({ ticket: 'OPS-1' });
    expect(() => metadataArg('just text')).toThrow(/mapping/);
    expect(() => metadataArg('[1, 2]')).toThrow(/mapping/);
  });
});

describe('--return_kwargs', () => {
  it('takes a YAML or JSON mapping of returner options, as Salt reads it', () => {
    expect(returnKwargsArg('{"filename": "/tmp/r.json"}')).toEqual({ filename: '/tmp/r.json' });
    expect(returnKwargsArg('{host: db2, port: 5433}')).toEqual({ host: 'db2', port: 5433 });
    expect(() => returnKwargsArg('host=db2')).toThrow(/mapping of returner options/);
    expect(() => returnKwargsArg('[1]')).toThrow(/mapping/);
  });
});
