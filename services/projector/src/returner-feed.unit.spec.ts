import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  encodeEvent,
  eventReturnFilter,
  ReturnerError,
  runnerReturnedTag,
  subjects,
  type LedgerEvent,
  type Returner,
  type RunnerReturned,
} from '@jobledger/core';
import { ConfigError } from '@jobledger/runtime';
import { addressOf, agentStarted, newJid, procStarted, published, returned, stamp } from '../test/support.js';
import { loadConfig } from './config.js';
import { parseMasterReturnersConfig } from './master-config.js';
import type { RawMessage } from './projections.js';
import {
  backoffMs,
  checkReturnerFunctions,
  cleanOldJobsEveryMs,
  configuredFeeds,
  isRetryable,
  planFeedCalls,
  positionAfter,
  type FeedCall,
} from './returner-feed.js';

const MASTER = 'master_master';
let seq = 0;
const raw = (ev: LedgerEvent): RawMessage => ({ seq: ++seq, subject: addressOf(ev).subject, data: encodeEvent(ev), time: new Date() });

function runnerReturned(jid: string): RunnerReturned {
  return {
    type: 'runner.returned',
    tag: runnerReturnedTag(jid),
    data: { fun: 'runner.jobs.list_jobs', jid, user: 'alice', fun_args: [], _stamp: stamp(), return: { a: 1 }, success: true },
  };
}

describe('planFeedCalls: master_job_cache', () => {
  it('save_load for a publication, returner for a return, store_job for a runner job, nothing for the rest', () => {
    const jid = newJid();
    const runJid = newJid();
    const pub = published(jid, { minions: ['m1', 'm2'], missing: ['m3'], fun: 'cmd.run', arg: ['id'] });
    const ret = returned(jid, 'm1', 'uid=0');
    const run = runnerReturned(runJid);
    const msgs = [pub, procStarted(jid, 'm1', 10), ret, agentStarted('m1'), run].map(raw);
    const calls = planFeedCalls('master_job_cache', msgs, { masterId: MASTER });
    const runLoad = { id: MASTER, tgt: MASTER, jid: runJid, return: run.data, fun: 'runner.jobs.list_jobs', user: 'alice', success: true };
    expect(calls).toEqual([
      {
        fn: 'save_load',
        seq: msgs[0]!.seq,
        jid,
        load: {
          cmd: 'publish',
          tgt: '*',
          fun: 'cmd.run',
          arg: ['id'],
          tgt_type: 'glob',
          ret: '',
          jid,
          user: 'root',
          minions: ['m1', 'm2'],
          missing: ['m3'],
        },
        minions: ['m1', 'm2'],
      },
      { fn: 'returner', seq: msgs[2]!.seq, jid, ret: ret.data },
      { fn: 'save_load', seq: msgs[4]!.seq, jid: runJid, load: runLoad, minions: [MASTER] },
      { fn: 'returner', seq: msgs[4]!.seq, jid: runJid, ret: runLoad },
    ]);
    // The return load is the master's full one.
    expect(calls[1]).toMatchObject({ ret: { cmd: '_return', _stamp: ret.data._stamp, id: 'm1' } });
  });

  it('leaves out messages the projection records as dead letters', () => {
    const bad: RawMessage = {
      seq: ++seq,
      subject: subjects.jobNew(newJid()),
      data: new TextEncoder().encode('{not json'),
      time: new Date(),
    };
    expect(planFeedCalls('master_job_cache', [bad], { masterId: MASTER })).toEqual([]);
    expect(planFeedCalls('event_return', [bad], { masterId: MASTER })).toEqual([]);
  });
});

describe('planFeedCalls: event_return', () => {
  it('whitelist then blacklist of fnmatch globs on the tag', () => {
    const jid = newJid();
    const evs: LedgerEvent[] = [
      published(jid),
      procStarted(jid, 'm1', 1),
      returned(jid, 'm1', true),
      agentStarted('m1'),
      runnerReturned(newJid()),
    ];
    const filter = eventReturnFilter(['salt/job/*', 'minion_start'], ['salt/job/*/proc/*']);
    const calls = planFeedCalls('event_return', evs.map(raw), { masterId: MASTER, filter });
    expect(calls.flatMap((c) => (c.fn === 'event_return' ? c.events.map((e) => e.tag) : []))).toEqual([
      evs[0]!.tag,
      evs[2]!.tag,
      'minion_start',
    ]);
  });

  it('every event passing the filter as {tag, data}, in stream order, at most maxEvents per call', () => {
    const jid = newJid();
    const evs: LedgerEvent[] = [
      published(jid),
      procStarted(jid, 'm1', 1),
      returned(jid, 'm1', true),
      agentStarted('m1'),
      returned(jid, 'm2', true),
    ];
    const msgs = evs.map(raw);
    const noProc = eventReturnFilter([], ['salt/job/*/proc/*']);
    const calls = planFeedCalls('event_return', msgs, { masterId: MASTER, filter: noProc, maxEvents: 2 });
    expect(calls).toEqual([
      {
        fn: 'event_return',
        seq: msgs[2]!.seq,
        seqs: [msgs[0]!.seq, msgs[2]!.seq],
        events: [
          { tag: evs[0]!.tag, data: evs[0]!.data },
          { tag: evs[2]!.tag, data: evs[2]!.data },
        ],
      },
      {
        fn: 'event_return',
        seq: msgs[4]!.seq,
        seqs: [msgs[3]!.seq, msgs[4]!.seq],
        events: [
          { tag: 'minion_start', data: evs[3]!.data },
          { tag: evs[4]!.tag, data: evs[4]!.data },
        ],
      },
    ]);
  });

  it("drops events carrying __peer_id, as Salt's EventReturn does", () => {
    const jid = newJid();
    const ev = returned(jid, 'm1', true, { __peer_id: 'other' });
    expect(planFeedCalls('event_return', [raw(ev)], { masterId: MASTER, filter: eventReturnFilter([], []) })).toEqual([]);
  });
});

describe('positionAfter: a sequence is taken once all its calls are', () => {
  const call = (fn: 'save_load' | 'returner', s: number): FeedCall =>
    fn === 'save_load' ? { fn, seq: s, jid: 'j', load: {} } : { fn, seq: s, jid: 'j', ret: {} as never };
  // a publication at 10, a runner job's pair at 11, a return at 12
  const calls = [call('save_load', 10), call('save_load', 11), call('returner', 11), call('returner', 12)];
  it('stops between a runner job pair: one before its sequence', () => {
    expect([0, 1, 2, 3, 4].map((done) => positionAfter(calls, done, 9))).toEqual([9, 10, 10, 11, 12]);
  });
  it('never goes back', () => {
    expect(positionAfter(calls, 2, 10)).toBe(10);
    expect(positionAfter([call('save_load', 5), call('returner', 5)], 1, 4)).toBe(4);
  });
});

describe('clean_old_jobs cadence (master.yaml)', () => {
  it("every loop_interval seconds (default 60) while Salt's keep_jobs_seconds is above 0", () => {
    expect(cleanOldJobsEveryMs({}, 'm.yaml')).toBe(60_000);
    expect(cleanOldJobsEveryMs({ loop_interval: 5 }, 'm.yaml')).toBe(5_000);
    expect(cleanOldJobsEveryMs({ keep_jobs_seconds: 0 }, 'm.yaml')).toBeUndefined();
    // keep_jobs (hours) counts only while keep_jobs_seconds is its default
    expect(cleanOldJobsEveryMs({ keep_jobs: 0 }, 'm.yaml')).toBeUndefined();
    expect(cleanOldJobsEveryMs({ keep_jobs: 0, keep_jobs_seconds: 10 }, 'm.yaml')).toBe(60_000);
  });
  it('refuses a loop_interval or keep_jobs_seconds that is not a number', () => {
    expect(() => cleanOldJobsEveryMs({ loop_interval: 'often' }, 'm.yaml')).toThrow(
      new ConfigError('loop_interval in m.yaml must be a positive number of seconds, got "often"'),
    );
    expect(() => cleanOldJobsEveryMs({ loop_interval: 0 }, 'm.yaml')).toThrow(ConfigError);
    expect(() => cleanOldJobsEveryMs({ keep_jobs_seconds: 'x' }, 'm.yaml')).toThrow(ConfigError);
  });
});

describe('failures', () => {
  it('retryable: the flag when there is one, else true (nothing is skipped on doubt)', () => {
    expect(isRetryable(new ReturnerError('pgjsonb', 'down', { retryable: true }))).toBe(true);
    expect(isRetryable(new ReturnerError('pgjsonb', 'bad data', { retryable: false }))).toBe(false);
    expect(isRetryable(new Error('boom'))).toBe(true);
    expect(isRetryable(Object.assign(new Error('x'), { retryable: false }))).toBe(false);
  });

  it('back-off doubles from the minimum up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 100].map((n) => backoffMs(n, 500, 15_000))).toEqual([500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000]);
  });

  it("a returner lacking a function of its role is a configuration error in Salt's words", () => {
    const onlyReturner: Returner = { returner: async () => undefined };
    expect(() => checkReturnerFunctions('master_job_cache', 'syslog', onlyReturner)).toThrow(
      new ConfigError("master_job_cache: 'syslog.save_load' returner function not implemented yet."),
    );
    expect(() => checkReturnerFunctions('event_return', 'syslog', onlyReturner)).toThrow(
      "event_return: 'syslog.event_return' returner function not implemented yet.",
    );
    expect(() => checkReturnerFunctions('event_return', 'x', { ...onlyReturner, eventReturn: async () => undefined })).not.toThrow();
  });
});

describe('master configuration', () => {
  it('master_job_cache, event_return (name or list), the filters and id', () => {
    const c = parseMasterReturnersConfig(
      {
        master_job_cache: 'pgjsonb',
        event_return: ['rawfile_json', 'pgjsonb'],
        event_return_whitelist: ['salt/job/*'],
        event_return_blacklist: 'salt/job/*/proc/*',
        id: 'saltmaster',
        'returner.pgjsonb.host': 'db',
      },
      '/etc/master.yaml',
    );
    expect(c).toMatchObject({
      masterJobCache: 'pgjsonb',
      eventReturn: ['rawfile_json', 'pgjsonb'],
      eventReturnWhitelist: ['salt/job/*'],
      eventReturnBlacklist: ['salt/job/*/proc/*'],
      id: 'saltmaster',
      extensionModules: '/etc/extmods',
    });
    expect(parseMasterReturnersConfig({ extension_modules: '/srv/ext' }, '/etc/master.yaml').extensionModules).toBe('/srv/ext');
    expect(c.cachedir).toBe('/etc/cache/master');
    expect(c.mapping).toMatchObject({ cachedir: '/etc/cache/master', extension_modules: '/etc/extmods', 'returner.pgjsonb.host': 'db' });
    expect(configuredFeeds(c)).toEqual([
      { role: 'master_job_cache', name: 'pgjsonb' },
      { role: 'event_return', name: 'rawfile_json' },
      { role: 'event_return', name: 'pgjsonb' },
    ]);
    expect(configuredFeeds(parseMasterReturnersConfig({ event_return: 'syslog' }, 'f'))).toEqual([
      { role: 'event_return', name: 'syslog' },
    ]);
    expect(configuredFeeds(parseMasterReturnersConfig({ master_job_cache: '', event_return: '' }, 'f'))).toEqual([]);
  });

  it("cachedir: the master's own (<home>/cache/master, apart from the agents' <home>/cache), a relative one from the home", () => {
    const at = (cachedir: unknown) => parseMasterReturnersConfig({ cachedir }, '/etc/jl/master.yaml', '/srv/jl');
    expect(at(undefined).cachedir).toBe('/srv/jl/cache/master');
    expect(at('').mapping.cachedir).toBe('/srv/jl/cache/master');
    expect(at('var/cache').cachedir).toBe('/srv/jl/var/cache');
    expect(at('var/cache').mapping.cachedir).toBe('/srv/jl/var/cache');
    expect(at('/var/cache/salt/master').mapping.cachedir).toBe('/var/cache/salt/master');
    expect(() => at(['x'])).toThrow(new ConfigError('cachedir in /etc/jl/master.yaml must be a path'));
  });

  it('refuses values that are not names', () => {
    expect(() => parseMasterReturnersConfig({ master_job_cache: ['a', 'b'] }, 'm.yaml')).toThrow(
      'master_job_cache in m.yaml must be one returner name',
    );
    expect(() => parseMasterReturnersConfig({ event_return: [1] }, 'm.yaml')).toThrow(
      'event_return in m.yaml must be a returner name or a list of names',
    );
    expect(() => parseMasterReturnersConfig({ event_return_whitelist: { a: 1 } }, 'm.yaml')).toThrow(ConfigError);
  });

  const dir = mkdtempSync(path.join(os.tmpdir(), 'jobledger-master-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const env = { JOBLEDGER_NATS_URL: 'nats://127.0.0.1:4222', DATABASE_URL: 'postgres://u@localhost/db', JOBLEDGER_HOME: dir };

  it('the projector reads $JOBLEDGER_HOME/master.yaml; JOBLEDGER_MASTER_ID wins over its id', () => {
    writeFileSync(path.join(dir, 'master.yaml'), 'id: saltmaster\nmaster_job_cache: pgjsonb\nreturner.pgjsonb.port: 5433\n');
    const c = loadConfig(env);
    expect(c.masterId).toBe('saltmaster');
    expect(c.returners).toMatchObject({ masterJobCache: 'pgjsonb', file: path.join(dir, 'master.yaml') });
    expect(c.returners?.mapping['returner.pgjsonb.port']).toBe(5433);
    expect(c.returners?.extensionModules).toBe(path.join(dir, 'extmods'));
    expect(c.returners?.mapping.cachedir).toBe(path.join(dir, 'cache', 'master'));
    expect(loadConfig({ ...env, JOBLEDGER_MASTER_ID: 'from_env' }).masterId).toBe('from_env');
  });

  it('a master.yaml that is not a mapping is a configuration error naming the file', () => {
    writeFileSync(path.join(dir, 'master.yaml'), '- a\n- b\n');
    expect(() => loadConfig(env)).toThrow(`${path.join(dir, 'master.yaml')} must hold a mapping`);
  });
});
