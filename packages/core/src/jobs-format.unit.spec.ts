import { describe, expect, it } from 'vitest';
import { jidToMicros } from './jid.js';
import {
  activeJobs,
  DateParseError,
  endTimeText,
  escapeLike,
  exitSuccess,
  formatJidInstance,
  formatJidInstanceExt,
  formatJobInstance,
  formatRunnerJidInstance,
  globToSql,
  lookupJidReturn,
  matchesListJobs,
  normaliseListJobsFilters,
  parseDateTime,
  pyTruthy,
  splitInput,
} from './jobs-format.js';
import { globMatch } from './targeting.js';

const JID = '20190724155612509222';

describe('format_job_instance / format_jid_instance', () => {
  it("uses Salt's keys and defaults (Target-type defaults to list, not glob)", () => {
    expect(formatJobInstance({})).toEqual({
      Function: 'unknown-function',
      Arguments: [],
      Target: 'unknown-target',
      'Target-type': 'list',
      User: 'root',
    });
    expect(formatJidInstance(JID, { fun: 'cmd.run', arg: ['ls /'], tgt: ['a', 'b'], tgt_type: 'list', user: 'alice' })).toEqual({
      Function: 'cmd.run',
      Arguments: ['ls /'],
      Target: ['a', 'b'],
      'Target-type': 'list',
      User: 'alice',
      StartTime: '2019, Jul 24 15:56:12.509222',
    });
  });

  it('turns a string arg into its characters, as list() does', () => {
    expect(formatJobInstance({ arg: 'ab' }).Arguments).toEqual(['a', 'b']);
  });

  it('finds Metadata in load.metadata, then kwargs.metadata, then a __kwarg__ mapping in arg', () => {
    expect(formatJobInstance({ metadata: { t: 1 }, kwargs: { metadata: { t: 2 } } }).Metadata).toEqual({ t: 1 });
    expect(formatJobInstance({ kwargs: { metadata: { t: 2 } } }).Metadata).toEqual({ t: 2 });
    expect(formatJobInstance({ arg: ['x', { metadata: { t: 3 }, __kwarg__: true }] }).Metadata).toEqual({ t: 3 });
    expect(formatJobInstance({ arg: [{ metadata: { t: 3 } }] })).not.toHaveProperty('Metadata');
    expect(formatJobInstance({ fun: 'test.ping' })).not.toHaveProperty('Metadata');
  });

  it('format_jid_instance_ext adds JID', () => {
    expect(formatJidInstanceExt(JID, { fun: 'test.ping' })).toMatchObject({ JID, StartTime: '2019, Jul 24 15:56:12.509222' });
  });

  it("the runner's formatter gives an Error for an empty load and keeps Minions", () => {
    expect(formatRunnerJidInstance(JID, {})).toEqual({
      Error: 'Cannot contact returner or no job with this jid',
      StartTime: '2019, Jul 24 15:56:12.509222',
    });
    expect(formatRunnerJidInstance(JID, { fun: 'test.ping', Minions: ['a'] })).toMatchObject({ Function: 'test.ping', Minions: ['a'] });
  });

  it('EndTime is jid_to_time of the instant', () => {
    expect(endTimeText(new Date(Date.UTC(2026, 10, 25, 18, 14, 15, 937)))).toBe('2026, Nov 25 18:14:15.937000');
  });
});

describe('lookup_jid and exit_success', () => {
  const result = { a: { return: 'hi', id: 'a' }, b: { return: '', id: 'b' } };

  it('maps minions to their return; missing=True names the silent ones; returned=False leaves returns out', () => {
    expect(lookupJidReturn(['a', 'b', 'c'], result)).toEqual({ a: 'hi', b: '' });
    expect(lookupJidReturn(['a', 'b', 'c'], result, { missing: true })).toEqual({ a: 'hi', b: '', c: 'Minion did not return' });
    expect(lookupJidReturn(['a', 'b', 'c'], result, { missing: true, returned: false })).toEqual({ c: 'Minion did not return' });
    expect(lookupJidReturn([], {})).toEqual({});
  });

  it('wraps as {outputter, data} when the first result carries out', () => {
    expect(lookupJidReturn(['a'], { a: { return: { x: 1 }, out: 'highstate' } })).toEqual({
      outputter: 'highstate',
      data: { a: { x: 1 } },
    });
  });

  it('exit_success tests the truthiness of the stored return; expected minions without one are false', () => {
    expect(exitSuccess(['a', 'b', 'c'], result)).toEqual({ a: true, b: false, c: false });
    expect(exitSuccess([], { x: { return: [0] } })).toEqual({ x: true });
  });

  it("Python's truthiness", () => {
    for (const v of [null, undefined, false, 0, '', [], {}]) expect(pyTruthy(v)).toBe(false);
    for (const v of [true, 1, -1, 'x', [0], { a: 0 }, 0.5]) expect(pyTruthy(v)).toBe(true);
  });
});

describe('jobs.active', () => {
  it('groups saltutil.running replies by jid, with Running pids and an empty Returned; skips non-lists', () => {
    const proc = { jid: JID, fun: 'test.sleep', arg: [30], tgt: '*', tgt_type: 'glob', user: 'root' };
    expect(
      activeJobs({
        a: [{ ...proc, pid: 11 }],
        b: [{ ...proc, pid: 12 }],
        c: "'saltutil.running' is not available.",
      }),
    ).toEqual({
      [JID]: {
        Function: 'test.sleep',
        Arguments: [30],
        Target: '*',
        'Target-type': 'glob',
        User: 'root',
        StartTime: '2019, Jul 24 15:56:12.509222',
        Running: [{ a: 11 }, { b: 12 }],
        Returned: [],
      },
    });
  });
});

describe('list_jobs filters', () => {
  it('split_input: lists as they are, strings split on commas and stripped', () => {
    expect(splitInput('test.*, pkg.install')).toEqual(['test.*', 'pkg.install']);
    expect(splitInput(['a,b', 'c'])).toEqual(['a,b', 'c']);
    expect(splitInput(5)).toEqual(['5']);
  });

  it('applies Salt’s semantics: AND of filters, fnmatch on Function and on each Target element, any metadata pair', () => {
    const rec = (over: Record<string, unknown>) => formatJidInstance(JID, { fun: 'cmd.run', tgt: 'web*', tgt_type: 'glob', ...over });
    const f = (x: Parameters<typeof normaliseListJobsFilters>[0]) => normaliseListJobsFilters(x);
    expect(matchesListJobs(JID, rec({}), f({ search_function: 'cmd.*' }))).toBe(true);
    expect(matchesListJobs(JID, rec({}), f({ search_function: 'test.*,cmd.run' }))).toBe(true);
    expect(matchesListJobs(JID, rec({}), f({ search_function: 'CMD.*' }))).toBe(false);
    // The target text is matched, not the minions: '*' does not match 'web1'.
    expect(matchesListJobs(JID, rec({ tgt: '*' }), f({ search_target: 'web1' }))).toBe(false);
    expect(matchesListJobs(JID, rec({ tgt: ['db1', 'web1'] }), f({ search_target: 'web?' }))).toBe(true);
    expect(matchesListJobs(JID, rec({ metadata: { a: 1, b: 2 } }), f({ search_metadata: { a: 9, b: 2 } }))).toBe(true);
    expect(matchesListJobs(JID, rec({ metadata: { a: 1 } }), f({ search_metadata: 'a' }))).toBe(false);
    expect(matchesListJobs(JID, rec({}), f({ search_metadata: { a: 1 } }))).toBe(false);
    expect(matchesListJobs(JID, rec({}), f({ search_function: 'cmd.*', search_target: 'db*' }))).toBe(false);
    expect(matchesListJobs(JID, rec({}), f({ search_function: '', search_target: [] }))).toBe(true);
  });

  it('start_time and end_time are inclusive bounds on the StartTime', () => {
    const r = formatJidInstance(JID, {});
    const f = normaliseListJobsFilters;
    expect(matchesListJobs(JID, r, f({ start_time: '2019, Jul 24 15:56:12.509222' }))).toBe(true);
    expect(matchesListJobs(JID, r, f({ start_time: '2019-07-24T15:56:12.509223' }))).toBe(false);
    expect(matchesListJobs(JID, r, f({ end_time: '2019-07-24 15:56:12.509222' }))).toBe(true);
    expect(matchesListJobs(JID, r, f({ end_time: '2019-07-24 15:56' }))).toBe(false);
  });
});

describe('fnmatch globs as SQL', () => {
  it('uses equality without wildcards and a LIKE prefix for a trailing star', () => {
    expect(globToSql('cmd.run')).toEqual({ kind: 'exact', value: 'cmd.run' });
    expect(globToSql('cmd.*')).toEqual({ kind: 'prefix', like: 'cmd.%' });
    expect(globToSql('*')).toEqual({ kind: 'prefix', like: '%' });
    expect(globToSql('my_mod%x**')).toEqual({ kind: 'prefix', like: 'my\\_mod\\%x%' });
    expect(escapeLike('a\\b')).toBe('a\\\\b');
  });

  it('translates everything else to an anchored regular expression with fnmatch semantics', () => {
    const cases: Array<[string, string[]]> = [
      ['*.run', ['cmd.run', '.run', 'cmd.run_all', 'xrun']],
      ['test.?ing', ['test.ping', 'test.pping', 'test.ing']],
      ['[!a]*', ['abc', 'bcd', '', '!x']],
      ['[a-c]x', ['ax', 'cx', 'dx', '-x']],
      ['[]]x', [']x', 'x']],
      ['[!]]x', [']x', 'ax']],
      ['[abc', ['[abc', 'a']],
      ['a*b*c', ['abc', 'a-b-c', 'a\nb\nc', 'ab']],
      ['web-(1)+?x', ['web-(1)+ax', 'web-1x']],
      ['[^a]x', ['^x', 'ax', 'bx']],
      ['x[\\]y', ['x\\y', 'xy']],
    ];
    for (const [glob, names] of cases) {
      const sql = globToSql(glob);
      expect(sql.kind, glob).toBe('regex');
      if (sql.kind !== 'regex') continue;
      const re = new RegExp(sql.regex, 's');
      for (const n of names) expect(re.test(n), `${glob} vs ${JSON.stringify(n)}`).toBe(globMatch(n, glob));
    }
  });
});

describe('dateutil times', () => {
  const now = new Date(Date.UTC(2026, 10, 25, 12, 0, 0));
  const at = (s: string) => new Date(Number(parseDateTime(s, now) / 1000n)).toISOString();
  const micros = (s: string) => parseDateTime(s, now) % 1_000_000n;

  it('reads ISO times, Salt StartTimes and the forms people type (UTC)', () => {
    expect(at('2015, Mar 16 19:00')).toBe('2015-03-16T19:00:00.000Z');
    expect(at('2026, Nov 25 18:14:15.937764')).toBe('2026-11-25T18:14:15.937Z');
    expect(micros('2026, Nov 25 18:14:15.937764')).toBe(937764n);
    expect(at('2026-11-25')).toBe('2026-11-25T00:00:00.000Z');
    expect(at('2026-11-25T18:14')).toBe('2026-11-25T18:14:00.000Z');
    expect(at('2026-11-25 18:14:15.5')).toBe('2026-11-25T18:14:15.500Z');
    expect(at('2026-11-25T18:14:15+02:00')).toBe('2026-11-25T16:14:15.000Z');
    expect(at('Nov 24 2026 6pm')).toBe('2026-11-24T18:00:00.000Z');
    expect(at('24 November 2026 12:30 am')).toBe('2026-11-24T00:30:00.000Z');
    expect(at('Tue, 24 Nov 2026 10:00:00 GMT')).toBe('2026-11-24T10:00:00.000Z');
    expect(at('11/24/2026')).toBe('2026-11-24T00:00:00.000Z');
    expect(at('2026/11/24 08:00')).toBe('2026-11-24T08:00:00.000Z');
    expect(at('20261124')).toBe('2026-11-24T00:00:00.000Z');
    expect(at('20261124081500')).toBe('2026-11-24T08:15:00.000Z');
    expect(parseDateTime('20261125181415937764', now)).toBe(jidToMicros('20261125181415937764'));
  });

  it('fills a missing date from today and a missing time with midnight', () => {
    expect(at('19:00')).toBe('2026-11-25T19:00:00.000Z');
    expect(at('Mar 3')).toBe('2026-03-03T00:00:00.000Z');
  });

  it('refuses what dateutil refuses, with its texts', () => {
    expect(() => parseDateTime('yesterday', now)).toThrow(DateParseError);
    expect(() => parseDateTime('yesterday', now)).toThrow('Unknown string format: yesterday');
    expect(() => parseDateTime('  ', now)).toThrow('String does not contain a date');
    expect(() => parseDateTime('2026-02-30', now)).toThrow('day is out of range for month');
  });
});
