import { describe, expect, it } from 'vitest';
import type { LedgerEvent } from '@jobledger/core';
import { EventVisibility } from './event-visibility.js';

const published = (jid: string, fun: string, user = 'root', minions = ['a']) =>
  ({
    type: 'job.published',
    tag: `salt/job/${jid}/new`,
    data: { jid, fun, arg: [], minions, user, tgt: '*', tgt_type: 'glob' },
  }) as unknown as LedgerEvent;
const returned = (jid: string, fun: string, id = 'a', user = 'root') =>
  ({ type: 'job.returned', tag: `salt/job/${jid}/ret/${id}`, data: { jid, fun, id, user, fun_args: [] } }) as unknown as LedgerEvent;
const proc = (jid: string) =>
  ({ type: 'proc.ended', tag: `salt/job/${jid}/proc/a/ended`, data: { jid, id: 'a' } }) as unknown as LedgerEvent;
const key = { type: 'key.accepted', tag: 'salt/key', data: { id: 'a' } } as unknown as LedgerEvent;

describe('/events visibility', () => {
  it("follows the user's rules, its own jobs, and a job's publication for its later events", async () => {
    const lookups: string[] = [];
    const store = new Map([['2', published('2', 'cmd.run')]]);
    const v = new EventVisibility('tester', ['test.*'], (jid) => {
      lookups.push(jid);
      return Promise.resolve(store.get(jid));
    });
    expect(await v.visible(published('1', 'test.ping'))).toBe(true);
    expect(await v.visible(proc('1'))).toBe(true);
    expect(await v.visible(published('3', 'cmd.run'))).toBe(false);
    expect(await v.visible(returned('3', 'cmd.run'))).toBe(false);
    expect(await v.visible(published('4', 'cmd.run', 'tester'))).toBe(true);
    expect(lookups).toEqual([]);
    // a job first seen by its later events: its publication decides
    expect(await v.visible(returned('2', 'cmd.run'))).toBe(false);
    expect(await v.visible(proc('5'))).toBe(false);
    expect(lookups).toEqual(['2', '5']);
    expect(await v.visible(key)).toBe(false);
    expect(await new EventVisibility('admin', ['@wheel'], () => Promise.resolve(undefined)).visible(key)).toBe(true);
  });
});
