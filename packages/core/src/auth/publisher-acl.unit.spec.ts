import { describe, expect, it } from 'vitest';
import { resolveTarget } from '../targeting.js';
import { AclConfigError, AclTexts, authorizePublish, checkBlacklist, exprMatch, parsePublisherAcl, reMatch } from './publisher-acl.js';

const fleet = ['web1', 'web2', 'db1'];
const ctx = {
  privilegedUsers: new Set(['root', 'jobledger']),
  compoundMinions: (expr: string) => resolveTarget(fleet, expr, 'compound').minions,
};
const acl = parsePublisherAcl({
  publisher_acl: {
    fred: ['test.*', { 'web*': ['pkg.*', { 'file.read': { args: ['/etc/.*'] } }, { 'svc.restart': { kwargs: { name: 'nginx' } } }] }],
    'ops-*': ['.*'],
  },
  publisher_acl_blacklist: { users: ['mallory'], modules: ['cmd.*'] },
  sudo_acl: true,
});
const req = (user: string, fun: string, minions: string[], arg: unknown[] = []) => ({ user, fun, arg, minions });

describe('Salt matching primitives', () => {
  it('re.match is anchored at the start only; expr_match is exact, glob or whole regex', () => {
    expect(reMatch('test.ping', 'test.pingx')).toBe(true);
    expect(reMatch('test\\.ping', 'xtest.ping')).toBe(false);
    expect(reMatch('(', 'x')).toBe(false);
    expect(exprMatch('ops-1', 'ops-*')).toBe(true);
    expect(exprMatch('fred', '^f.*d$')).toBe(true);
    expect(exprMatch('fredx', 'fred')).toBe(false);
  });
});

describe('publisher_acl', () => {
  it('lets a user run what a rule allows, on any target for plain rules', () => {
    expect(authorizePublish(acl, req('fred', 'test.ping', fleet), ctx)).toEqual({ allowed: true });
    expect(authorizePublish(acl, req('ops-7', 'state.apply', fleet), ctx)).toEqual({ allowed: true });
  });
  it('restricts target rules to ids the rule target matches, all of them', () => {
    expect(authorizePublish(acl, req('fred', 'pkg.install', ['web1', 'web2']), ctx).allowed).toBe(true);
    expect(authorizePublish(acl, req('fred', 'pkg.install', ['web1', 'db1']), ctx)).toEqual({
      allowed: false,
      error: 'AuthorizationError',
      reason: AclTexts.userAuthFailure,
    });
  });
  it('checks positional and keyword argument rules', () => {
    expect(authorizePublish(acl, req('fred', 'file.read', ['web1'], ['/etc/hosts']), ctx).allowed).toBe(true);
    expect(authorizePublish(acl, req('fred', 'file.read', ['web1'], ['/root/x']), ctx).allowed).toBe(false);
    expect(authorizePublish(acl, req('fred', 'file.read', ['web1'], []), ctx).allowed).toBe(false);
    expect(authorizePublish(acl, req('fred', 'svc.restart', ['web1'], [{ name: 'nginx', __kwarg__: true }]), ctx).allowed).toBe(true);
    expect(authorizePublish(acl, req('fred', 'svc.restart', ['web1'], [{ name: 'sshd', __kwarg__: true }]), ctx).allowed).toBe(false);
  });
  it('denies cmd.run to a user allowed only test.* and pkg.* on web*', () => {
    expect(authorizePublish(acl, req('fred', 'cmd.run', ['web1']), ctx)).toMatchObject({ allowed: false, error: 'AuthorizationError' });
  });
  it('always allows saltutil.find_job to a known user', () => {
    expect(authorizePublish(acl, req('fred', 'saltutil.find_job', fleet), ctx).allowed).toBe(true);
  });
  it('is an authentication error for a user the ACL does not name', () => {
    expect(authorizePublish(acl, req('eve', 'test.ping', fleet), ctx)).toMatchObject({ allowed: false, error: 'AuthenticationError' });
  });
  it('does not restrict root or the master user, except by the blacklist', () => {
    expect(authorizePublish(acl, req('root', 'state.apply', fleet), ctx).allowed).toBe(true);
    expect(authorizePublish(acl, req('jobledger', 'pkg.install', fleet), ctx).allowed).toBe(true);
    expect(authorizePublish(acl, req('root', 'cmd.run', fleet), ctx)).toEqual({
      allowed: false,
      error: 'AuthorizationError',
      reason: AclTexts.blacklisted('root', 'cmd.run'),
    });
  });
  it('applies the ACL to sudo_<name> only with sudo_acl', () => {
    expect(authorizePublish(acl, req('sudo_fred', 'state.apply', ['web1']), ctx).allowed).toBe(false);
    expect(authorizePublish(acl, req('sudo_fred', 'test.ping', ['web1']), ctx).allowed).toBe(true);
    const loose = { ...acl, sudo_acl: false };
    expect(authorizePublish(loose, req('sudo_fred', 'state.apply', ['web1']), ctx).allowed).toBe(true);
  });
  it('blacklists users and modules by glob or regex', () => {
    expect(checkBlacklist(acl, 'mallory', 'test.ping').allowed).toBe(false);
    expect(checkBlacklist(acl, 'fred', 'cmd.script').allowed).toBe(false);
    expect(checkBlacklist(acl, 'fred', 'test.ping').allowed).toBe(true);
  });
  it('names a malformed configuration key', () => {
    expect(() => parsePublisherAcl({ publisher_acl: { fred: 'test.*' } })).toThrow(AclConfigError);
    expect(() => parsePublisherAcl({ publisher_acl_blacklist: { users: 'bob' } })).toThrow(/publisher_acl_blacklist.users/);
    expect(() => parsePublisherAcl({ sudo_acl: 'yes' })).toThrow(/sudo_acl/);
    expect(parsePublisherAcl({})).toEqual({ publisher_acl: {}, publisher_acl_blacklist: { users: [], modules: [] }, sudo_acl: false });
  });
});
