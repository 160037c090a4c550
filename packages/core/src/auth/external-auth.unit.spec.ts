import { describe, expect, it } from 'vitest';
import { authorizeEauthPublish, eauthRules, parseExternalAuth, specCheck } from './external-auth.js';
import { AclConfigError, EMPTY_PUBLISHER_ACL } from './publisher-acl.js';

const ea = parseExternalAuth({
  external_auth: {
    file: {
      '^filename': '/etc/users',
      '^filetype': 'htpasswd',
      saltdev: ['.*', '@runner', '@wheel', '@jobs'],
      'ops-*': [{ 'web*': ['test.*', { 'pkg.install': { args: ['vim'] } }] }],
      tester: ['test.*', { '@runner': ['jobs.list_.*'] }],
      'admins%': ['@wheel'],
      '*': ['test.ping'],
    },
  },
});
const file = ea.file!;
const ctx = { compoundMinions: (expr: string) => (expr === 'web*' ? ['web1', 'web2'] : []) };

describe('external_auth', () => {
  it('keeps ^options apart from users', () => {
    expect(file.options).toEqual({ filename: '/etc/users', filetype: 'htpasswd' });
    expect(Object.keys(file.users)).toEqual(['saltdev', 'ops-*', 'tester', 'admins%', '*']);
  });

  it("fill_auth_list: matching user keys and groups; '*' only for a user nothing matched (unless permissive)", () => {
    expect(eauthRules(file, 'saltdev')).toEqual(['.*', '@runner', '@wheel', '@jobs']);
    expect(eauthRules(file, 'nobody')).toEqual(['test.ping']);
    expect(eauthRules(file, 'nobody', ['admins'])).toEqual(['@wheel', 'test.ping']);
    expect(eauthRules(file, 'tester', [], true)).toEqual(['test.*', { '@runner': ['jobs.list_.*'] }, 'test.ping']);
  });

  it('a publish: function regexes, target-bound rules, argument rules, the blacklist', () => {
    const req = (user: string, fun: string, minions: string[], arg: unknown[] = []) => ({ user, fun, arg, minions });
    const allowed = (user: string, fun: string, minions: string[], arg: unknown[] = []) =>
      authorizeEauthPublish(EMPTY_PUBLISHER_ACL, eauthRules(file, user), req(user, fun, minions, arg), ctx).allowed;
    expect(allowed('saltdev', 'cmd.run', ['db1'])).toBe(true);
    expect(allowed('tester', 'test.ping', ['db1'])).toBe(true);
    expect(allowed('tester', 'cmd.run', ['db1'])).toBe(false);
    expect(allowed('ops-1', 'test.ping', ['web1'])).toBe(true);
    expect(allowed('ops-1', 'test.ping', ['web1', 'db1'])).toBe(false);
    expect(allowed('ops-1', 'pkg.install', ['web2'], ['vim'])).toBe(true);
    expect(allowed('ops-1', 'pkg.install', ['web2'], ['emacs'])).toBe(false);
    // saltutil.find_job is always allowed, as Salt's whitelist
    expect(allowed('tester', 'saltutil.find_job', ['db1'])).toBe(true);
    const blacklist = { ...EMPTY_PUBLISHER_ACL, publisher_acl_blacklist: { users: [], modules: ['cmd.*'] } };
    const denied = authorizeEauthPublish(blacklist, eauthRules(file, 'saltdev'), req('saltdev', 'cmd.run', ['db1']), ctx);
    expect(denied).toMatchObject({ allowed: false, error: 'AuthorizationError' });
    expect(authorizeEauthPublish(EMPTY_PUBLISHER_ACL, [], req('x', 'test.ping', ['a']), ctx)).toMatchObject({
      error: 'AuthenticationError',
    });
  });

  it('spec_check: @runner, @<module>, regexes on mod.fun or fun; plain strings never grant runners', () => {
    expect(specCheck(['@runner'], 'jobs.list_jobs', 'runner')).toBe(true);
    expect(specCheck(['@runners'], 'manage.up', 'runner')).toBe(true);
    expect(specCheck(['@jobs'], 'jobs.lookup_jid', 'runner')).toBe(true);
    expect(specCheck(['@jobs'], 'manage.up', 'runner')).toBe(false);
    expect(specCheck(['@wheel'], 'jobs.list_jobs', 'runner')).toBe(false);
    expect(specCheck(['.*'], 'jobs.list_jobs', 'runner')).toBe(false);
    expect(specCheck([{ '@runner': ['jobs.list_.*'] }], 'jobs.list_jobs', 'runner')).toBe(true);
    expect(specCheck([{ '@runner': ['jobs.list_.*'] }], 'jobs.lookup_jid', 'runner')).toBe(false);
    expect(specCheck([{ '@jobs': ['lookup_jid'] }], 'jobs.lookup_jid', 'runner')).toBe(true);
    expect(specCheck(['@runner'], 'jobs', 'runner')).toBe(false);
  });

  it('names a malformed entry', () => {
    expect(() => parseExternalAuth({ external_auth: { file: { bob: 'test.*' } } })).toThrow(AclConfigError);
    expect(() => parseExternalAuth({ external_auth: ['file'] })).toThrow(/external_auth must be a mapping/);
  });
});
