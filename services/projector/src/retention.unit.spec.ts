import { describe, expect, it } from 'vitest';
import { ConfigError } from '@jobledger/runtime';
import { loadConfig } from './config.js';
import { loadRetentionConfig, tagJid } from './retention.js';

describe('loadRetentionConfig', () => {
  it("has Salt's defaults: keep jobs 86400 s, delete rather than archive, every 60 s", () => {
    expect(loadRetentionConfig({})).toEqual({ keepJobsSeconds: 86_400, archiveJobs: false, loopIntervalSeconds: 60 });
    expect(loadConfig({ JOBLEDGER_NATS_URL: 'nats://x', DATABASE_URL: 'postgres://x' }).retention).toEqual(loadRetentionConfig({}));
  });

  it('reads the variables', () => {
    expect(
      loadRetentionConfig({ JOBLEDGER_KEEP_JOBS_SECONDS: '3600', JOBLEDGER_ARCHIVE_JOBS: 'True', JOBLEDGER_LOOP_INTERVAL: '0.5' }),
    ).toEqual({ keepJobsSeconds: 3600, archiveJobs: true, loopIntervalSeconds: 0.5 });
    expect(loadRetentionConfig({ JOBLEDGER_KEEP_JOBS_SECONDS: '0' }).keepJobsSeconds).toBe(0);
    expect(loadRetentionConfig({ JOBLEDGER_ARCHIVE_JOBS: 'no' }).archiveJobs).toBe(false);
  });

  it.each([
    // keep_jobs (hours) is used only when keep_jobs_seconds is still 86400 and keep_jobs is not 24
    [{ JOBLEDGER_KEEP_JOBS: '2' }, 7200, 2],
    [{ JOBLEDGER_KEEP_JOBS: '2', JOBLEDGER_KEEP_JOBS_SECONDS: '86400' }, 7200, 2],
    [{ JOBLEDGER_KEEP_JOBS: '0' }, 0, 0],
    [{ JOBLEDGER_KEEP_JOBS: '2', JOBLEDGER_KEEP_JOBS_SECONDS: '600' }, 600, undefined],
    [{ JOBLEDGER_KEEP_JOBS: '24' }, 86_400, undefined],
    [{ JOBLEDGER_KEEP_JOBS: '24', JOBLEDGER_KEEP_JOBS_SECONDS: '60' }, 60, undefined],
  ])('the deprecated JOBLEDGER_KEEP_JOBS as Salt: %j → %i s', (env, seconds, hours) => {
    const c = loadRetentionConfig(env);
    expect(c.keepJobsSeconds).toBe(seconds);
    expect(c.fromKeepJobsHours).toBe(hours);
  });

  it.each([
    [{ JOBLEDGER_KEEP_JOBS_SECONDS: '-1' }, 'JOBLEDGER_KEEP_JOBS_SECONDS must be a whole number of seconds'],
    [{ JOBLEDGER_KEEP_JOBS_SECONDS: '1.5' }, 'JOBLEDGER_KEEP_JOBS_SECONDS must be a whole number of seconds'],
    [{ JOBLEDGER_KEEP_JOBS_SECONDS: 'day' }, 'JOBLEDGER_KEEP_JOBS_SECONDS must be a number'],
    [{ JOBLEDGER_KEEP_JOBS: '-3' }, 'JOBLEDGER_KEEP_JOBS must be a number of hours'],
    [{ JOBLEDGER_ARCHIVE_JOBS: 'maybe' }, "JOBLEDGER_ARCHIVE_JOBS must be true or false, got 'maybe'"],
    [{ JOBLEDGER_LOOP_INTERVAL: '0' }, 'JOBLEDGER_LOOP_INTERVAL must be a number of seconds above 0'],
    [{ JOBLEDGER_LOOP_INTERVAL: '99999999' }, 'JOBLEDGER_LOOP_INTERVAL must be a number of seconds above 0'],
  ])('fails naming the variable: %j', (env, message) => {
    expect(() => loadRetentionConfig(env)).toThrow(ConfigError);
    expect(() => loadRetentionConfig(env)).toThrow(message);
  });
});

describe('tagJid', () => {
  it.each([
    ['salt/job/20261125181415937764/new', '20261125181415937764'],
    ['salt/job/20261125181415937764/ret/web1', '20261125181415937764'],
    ['salt/job/20261125181415937764_2/proc/a/started', '20261125181415937764_2'],
    ['salt/run/20261125181415937764/ret', '20261125181415937764'],
    ['minion_start', undefined],
    ['salt/job/notajid/new', undefined],
    ['salt/auth', undefined],
  ])('%s → %s', (tag, jid) => {
    expect(tagJid(tag)).toBe(jid);
  });
});
