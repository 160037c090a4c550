import { describe, expect, it } from 'vitest';
import { configValue, eventReturnFilter, fetchReturnerOption, getReturnerOptions, keepJobsSeconds } from './options.js';

const PG_DEFAULTS = { host: 'localhost', user: 'salt', pass: 'salt', db: 'salt', port: 5432 };
const PG_ATTRS = ['host', 'user', 'pass', 'db', 'port', 'sslmode'];

describe('getReturnerOptions', () => {
  it('reads flat keys and falls back to defaults for the rest', () => {
    const config = { 'returner.pgjsonb.host': 'db.example', 'returner.pgjsonb.port': 6543 };
    expect(getReturnerOptions('returner.pgjsonb', PG_ATTRS, { config }, PG_DEFAULTS)).toEqual({
      host: 'db.example',
      user: 'salt',
      pass: 'salt',
      db: 'salt',
      port: 6543,
    });
  });

  it('reads a nested mapping under the prefix, and nested YAML mappings of a dotted prefix', () => {
    expect(getReturnerOptions('returner.pgjsonb', PG_ATTRS, { config: { 'returner.pgjsonb': { db: 'jobs' } } })).toEqual({ db: 'jobs' });
    expect(getReturnerOptions('returner.pgjsonb', PG_ATTRS, { config: { returner: { pgjsonb: { user: 'u' } } } })).toEqual({ user: 'u' });
    expect(getReturnerOptions('smtp', ['from', 'to'], { config: { smtp: { from: 'a@x', to: 'b@x' } } })).toEqual({
      from: 'a@x',
      to: 'b@x',
    });
  });

  it('prefers the nested mapping over the flat key, as Salt does', () => {
    const config = { syslog: { level: 'LOG_ERR' }, 'syslog.level': 'LOG_DEBUG' };
    expect(fetchReturnerOption(config, undefined, 'syslog', 'level')).toBe('LOG_ERR');
  });

  it('--return_config NAME wins first and falls back to the default location per option', () => {
    const config = {
      'returner.pgjsonb.host': 'main',
      'returner.pgjsonb.db': 'main_db',
      'alternative.returner.pgjsonb.host': 'alt',
      'other.returner.pgjsonb': { db: 'other_db' },
    };
    expect(getReturnerOptions('returner.pgjsonb', ['host', 'db'], { config, retConfig: 'alternative' })).toEqual({
      host: 'alt',
      db: 'main_db',
    });
    expect(getReturnerOptions('returner.pgjsonb', ['host', 'db'], { config, retConfig: 'other' })).toEqual({
      host: 'main',
      db: 'other_db',
    });
    expect(getReturnerOptions('returner.pgjsonb', ['host', 'db'], { config, retConfig: 'missing' })).toEqual({
      host: 'main',
      db: 'main_db',
    });
  });

  it('--return_kwargs override last, the return_config location included', () => {
    const config = { 'alternative.smtp.to': 'alt@x', 'smtp.to': 'main@x', 'smtp.from': 'f@x' };
    expect(getReturnerOptions('smtp', ['from', 'to'], { config, retConfig: 'alternative', retKwargs: { to: 'kw@x' } })).toEqual({
      from: 'f@x',
      to: 'kw@x',
    });
  });

  it('keeps configured falsy values instead of the default (#63980)', () => {
    const defaults = { level: 'LOG_INFO', options: ['LOG_PID'], count: 5, on: true, name: 'x' };
    const config = { 'syslog.options': [], 'syslog.count': 0, 'syslog.on': false, 'syslog.name': '', 'alt.syslog.count': 0 };
    expect(getReturnerOptions('syslog', ['level', 'options', 'count', 'on', 'name'], { config }, defaults)).toEqual({
      level: 'LOG_INFO',
      options: [],
      count: 0,
      on: false,
      name: '',
    });
    const withDefault = { ...config, 'syslog.count': 7 };
    expect(getReturnerOptions('syslog', ['count'], { config: withDefault, retConfig: 'alt' }, defaults)).toEqual({ count: 0 });
  });

  it('treats null (YAML `key:` with no value) as not set: the next location or the default is used, as Salt', () => {
    const config = { syslog: { tag: null, level: null }, 'alt.syslog': { facility: null }, 'syslog.facility': 'LOG_DAEMON' };
    expect(getReturnerOptions('syslog', ['tag', 'level', 'facility'], { config, retConfig: 'alt' }, { level: 'LOG_INFO' })).toEqual({
      level: 'LOG_INFO',
      facility: 'LOG_DAEMON',
    });
    expect(fetchReturnerOption({ 'rawfile_json.filename': null }, undefined, 'rawfile_json', 'filename')).toBeUndefined();
  });

  it('maps option names to differently named keys', () => {
    expect(getReturnerOptions('returner.postgres', { pass: 'passwd' }, { config: { 'returner.postgres.passwd': 's3' } })).toEqual({
      pass: 's3',
    });
  });
});

describe('configValue', () => {
  it('prefers the literal dotted key and returns undefined when absent', () => {
    expect(configValue({ 'a.b': 1, a: { b: 2 } }, 'a.b')).toBe(1);
    expect(configValue({ a: { b: 2 } }, 'a.b')).toBe(2);
    expect(configValue({ a: 3 }, 'a.b')).toBeUndefined();
  });
});

describe('eventReturnFilter', () => {
  const ev = (tag: string, data: Record<string, unknown> = {}) => ({ tag, data });

  it('passes everything without lists', () => {
    const f = eventReturnFilter([], []);
    expect(f(ev('salt/job/1/ret/a'))).toBe(true);
    expect(f(ev('salt/auth'))).toBe(true);
  });

  it('whitelist keeps only matches; blacklist then removes', () => {
    const f = eventReturnFilter(['salt/job/*'], ['salt/job/*/new']);
    expect(f(ev('salt/job/20250101000000000000/ret/web1'))).toBe(true);
    expect(f(ev('salt/job/20250101000000000000/new'))).toBe(false);
    expect(f(ev('salt/auth'))).toBe(false);
  });

  it('blacklist alone, a single string glob, fnmatch classes, case-sensitive', () => {
    const f = eventReturnFilter(undefined, 'salt/[ak]*');
    expect(f(ev('salt/auth'))).toBe(false);
    expect(f(ev('salt/key'))).toBe(false);
    expect(f(ev('salt/minion/x/start'))).toBe(true);
    expect(f(ev('SALT/auth'))).toBe(true);
  });

  it('drops events carrying __peer_id', () => {
    expect(eventReturnFilter([], [])(ev('salt/job/1/ret/a', { __peer_id: 'peer' }))).toBe(false);
  });
});

describe('keepJobsSeconds', () => {
  it('follows get_keep_jobs_seconds', () => {
    expect(keepJobsSeconds({})).toBe(86400);
    expect(keepJobsSeconds({ keep_jobs_seconds: 60 })).toBe(60);
    expect(keepJobsSeconds({ keep_jobs: 2 })).toBe(7200);
    expect(keepJobsSeconds({ keep_jobs_seconds: 60, keep_jobs: 2 })).toBe(60);
    expect(keepJobsSeconds({ keep_jobs_seconds: 0 })).toBe(0);
  });
});
