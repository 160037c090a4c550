import { describe, expect, it } from 'vitest';
import { normaliseListJobsFilters } from '@jobledger/core';
import { listJobsSql, rowLoad } from './list-jobs-sql.js';
import { bindArgs, InvalidArgumentsError } from './signature.js';

const sql = (f: Parameters<typeof normaliseListJobsFilters>[0], limit = 1000, offset = 0) =>
  listJobsSql({ filters: normaliseListJobsFilters(f, new Date(Date.UTC(2026, 10, 25))), limit, offset });

describe('the SQL behind jobs.list_jobs', () => {
  it('default page: the newest jobs by the start_time index, no filter', () => {
    expect(sql({})).toEqual({
      text: 'SELECT jid, fun, arg, tgt, tgt_type, "user", metadata, expected, returned, failed FROM jobs ORDER BY start_time DESC NULLS LAST, jid DESC NULLS LAST LIMIT $1 OFFSET $2',
      values: [1000, 0],
    });
  });

  it("hide_internal: leaves out saltutil.find_job and the runner's own jobs", () => {
    const q = listJobsSql({ filters: {}, limit: 10, offset: 0, hideInternal: true });
    expect(q.text).toContain(`WHERE fun <> 'saltutil.find_job' AND fun NOT LIKE 'runner.%' ORDER BY`);
  });

  it('search_function: equality, a LIKE prefix, or an anchored regex, OR-ed over a comma list', () => {
    expect(sql({ search_function: 'cmd.*' })).toMatchObject({
      text: expect.stringContaining('WHERE fun LIKE $1 ORDER BY'),
      values: ['cmd.%', 1000, 0],
    });
    expect(sql({ search_function: 'test.ping,*.run' })).toMatchObject({
      text: expect.stringContaining('WHERE (fun = $1 OR fun ~ $2) ORDER BY'),
      values: ['test.ping', '^.*\\.run$', 1000, 0],
    });
    expect(sql({ search_function: '*' }).text).toContain('WHERE TRUE ORDER BY');
  });

  it('search_target: jsonb containment for a name (strings and list targets), element globs otherwise', () => {
    const q = sql({ search_target: ['web1', 'db*'] });
    expect(q.text).toContain('(tgt @> $1::jsonb OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(');
    expect(q.text).toContain('WHERE t.v LIKE $2)');
    expect(q.values.slice(0, 2)).toEqual(['"web1"', 'db%']);
  });

  it('search_metadata: any pair equal; not a mapping matches nothing', () => {
    const q = sql({ search_metadata: { ticket: 'OPS-1', n: 2 } });
    expect(q.text).toContain('((metadata -> $1::text) = $2::jsonb OR (metadata IS NULL AND');
    expect(q.text).toContain(' OR ((metadata -> $4::text) = $5::jsonb OR');
    expect(q.values.slice(0, 6)).toEqual([
      'ticket',
      '"OPS-1"',
      '[{"__kwarg__":true,"metadata":{"ticket":"OPS-1"}}]',
      'n',
      '2',
      '[{"__kwarg__":true,"metadata":{"n":2}}]',
    ]);
    expect(sql({ search_metadata: 'ticket' }).text).toContain('WHERE FALSE ORDER BY');
  });

  it('start_time / end_time: a start_time range narrowed exactly by the jid (microseconds, inclusive)', () => {
    const q = sql({ start_time: '2026-11-25 18:14:15.937764', end_time: '2026, Nov 25 19:00' });
    expect(q.text).toContain(
      'start_time >= $1::timestamptz AND jid COLLATE "C" >= $2 AND start_time <= $3::timestamptz AND jid COLLATE "C" < $4',
    );
    expect(q.values.slice(0, 4)).toEqual([
      '2026-11-25T18:14:15.937Z',
      '20261125181415937764',
      '2026-11-25T19:00:00.000Z',
      '20261125190000000001',
    ]);
  });

  it('pages with limit and offset', () => {
    expect(sql({}, 50, 100).values).toEqual([50, 100]);
  });

  it('rows become the load format_job_instance reads (metadata only when there is one)', () => {
    const row = { jid: 'j', fun: 'f', arg: [], tgt: '*', tgt_type: 'glob', user: 'u', metadata: null };
    expect(rowLoad(row)).toEqual({ fun: 'f', arg: [], tgt: '*', tgt_type: 'glob', user: 'u' });
    expect(rowLoad({ ...row, metadata: { a: 1 } })).toMatchObject({ metadata: { a: 1 } });
  });
});

describe('runner argument binding', () => {
  const sig = { name: 'lookup_jid', params: [{ name: 'jid' }, { name: 'ext_source', default: null }, { name: 'missing', default: false }] };

  it('binds positional then keyword values and fills defaults', () => {
    expect(bindArgs(sig, ['J'], { missing: true })).toEqual({ jid: 'J', ext_source: null, missing: true });
  });

  it("raises Python's TypeError texts", () => {
    const msg = (args: unknown[], kw: Record<string, unknown>) => {
      try {
        bindArgs(sig, args, kw);
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidArgumentsError);
        return (err as Error).message;
      }
      return 'bound';
    };
    expect(msg([], {})).toBe("lookup_jid() missing 1 required positional argument: 'jid'");
    expect(msg(['a', 'b', 'c', 'd'], {})).toBe('lookup_jid() takes from 1 to 3 positional arguments but 4 were given');
    expect(msg(['a'], { nope: 1 })).toBe("lookup_jid() got an unexpected keyword argument 'nope'");
    expect(msg(['a'], { jid: 'b' })).toBe("lookup_jid() got multiple values for argument 'jid'");
  });
});
