import { describe, expect, it } from 'vitest';
import { runnerArgs, unwrapOutputter } from './runner.js';

describe('jobledger runner arguments', () => {
  it('parses like salt-run, keeping jids as strings', () => {
    expect(runnerArgs(['20261125181415937764', 'missing=True', 'count=2', 'start_time=20261125181415937764'])).toEqual({
      arg: ['20261125181415937764'],
      kwarg: { missing: true, count: 2, start_time: '20261125181415937764' },
    });
    expect(runnerArgs(['search_function=cmd.*', 'search_metadata={"a": 1}', '["x", "y"]'])).toEqual({
      arg: [['x', 'y']],
      kwarg: { search_function: 'cmd.*', search_metadata: { a: 1 } },
    });
  });

  it('prints data with the outputter a runner asks for', () => {
    expect(unwrapOutputter({ outputter: 'highstate', data: { a: 1 } })).toEqual({ outputter: 'highstate', data: { a: 1 } });
    expect(unwrapOutputter({ outputter: 'json', data: 1, more: 2 })).toEqual({ data: { outputter: 'json', data: 1, more: 2 } });
    expect(unwrapOutputter(false)).toEqual({ data: false });
  });
});
