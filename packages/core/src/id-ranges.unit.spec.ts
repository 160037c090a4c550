import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { defaultAgentProcesses, expandIdList, expandIdWord, IdListError, MAX_LISTED_IDS, spreadIds } from './id-ranges.js';

describe('id lists and ranges', () => {
  it('expands web-[1-1000] to a thousand ids in order', () => {
    const ids = expandIdWord('web-[1-1000]');
    expect(ids).toHaveLength(1000);
    expect(ids.slice(0, 3)).toEqual(['web-1', 'web-2', 'web-3']);
    expect(ids.at(-1)).toBe('web-1000');
  });

  it('zero-pads when the bounds are written padded', () => {
    const ids = expandIdWord('web-[001-100]');
    expect(ids[0]).toBe('web-001');
    expect(ids[98]).toBe('web-099');
    expect(ids.at(-1)).toBe('web-100');
    expect(expandIdWord('db[08-10].lab')).toEqual(['db08.lab', 'db09.lab', 'db10.lab']);
  });

  it('keeps plain ids, order, and names each id once', () => {
    expect(expandIdList('a, b,web-[1-3],a,web-2')).toEqual(['a', 'b', 'web-1', 'web-2', 'web-3']);
  });

  it('reads an ids file: one word or list per line, # comments, blank lines', () => {
    expect(expandIdList('# fleet\nweb-[1-2]\n\ndb-1, db-2  # the databases\n', { file: true })).toEqual(['web-1', 'web-2', 'db-1', 'db-2']);
  });

  it('refuses what is not a range, a range that goes down, two ranges, and too many ids, in plain words', () => {
    expect(() => expandIdWord('web-[a-b]')).toThrow(new IdListError("'web-[a-b]' is not an id or a range such as web-[1-10]"));
    expect(() => expandIdWord('web-[9-1]')).toThrow('the range [9-1] goes down: write [1-9]');
    expect(() => expandIdWord('r[1-2]c[1-2]')).toThrow("'r[1-2]c[1-2]' has more than one range");
    expect(() => expandIdWord('web-[1-10000000]')).toThrow(`the range [1-10000000] names 10000000 ids, more than ${MAX_LISTED_IDS}`);
    expect(() => expandIdList('a-[1-60000],b-[1-60000]')).toThrow(`the list names more than ${MAX_LISTED_IDS} ids`);
  });

  it('any input either expands or is an IdListError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        try {
          const ids = expandIdList(s);
          expect(ids.length).toBeLessThanOrEqual(MAX_LISTED_IDS);
        } catch (err) {
          expect(err).toBeInstanceOf(IdListError);
        }
      }),
    );
  });

  it('spreads ids over processes evenly, consecutive ids together', () => {
    const ids = expandIdWord('w-[1-10]');
    expect(spreadIds(ids, 4).map((p) => p.length)).toEqual([3, 3, 2, 2]);
    expect(spreadIds(ids, 4).flat()).toEqual(ids);
    expect(spreadIds(['a', 'b'], 4)).toEqual([['a'], ['b']]);
    expect(defaultAgentProcesses(3)).toBe(3);
    expect(defaultAgentProcesses(8)).toBe(8);
    expect(defaultAgentProcesses(9)).toBe(4);
    expect(defaultAgentProcesses(1000)).toBe(4);
  });
});
