import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { parseExternalAuth } from '@jobledger/core';
import { fileEauthCheck, fileEauthOptions, htpasswdMatches } from './eauth-file.js';
import { HttpError } from './http-errors.js';
import { lowstateChunks, parseFormBody, parseTextBody } from './lowstate.js';
import { loginPerms } from './perms.js';
import { parseRestConfig } from './rest-config.js';
import { SessionStore } from './sessions.js';

describe('lowstate bodies', () => {
  it('wraps one mapping, makes a scalar arg a list, refuses what is not a list of mappings', () => {
    expect(lowstateChunks({ client: 'local', arg: 'x' })).toEqual([{ client: 'local', arg: ['x'] }]);
    expect(lowstateChunks([{ client: 'a' }, { client: 'b' }])).toHaveLength(2);
    for (const bad of [undefined, {}, 'text', [1], [['x']]]) expect(() => lowstateChunks(bad)).toThrow('Lowstates must be a list');
  });

  it('reads form fields as Salt: repeated keys are lists, arg values are yamlified', () => {
    expect(parseFormBody('client=local&tgt=*&fun=test.arg&arg=1&arg=x&arg=%5B1%2C2%5D')).toEqual({
      client: 'local',
      tgt: '*',
      fun: 'test.arg',
      arg: [1, 'x', [1, 2]],
    });
  });

  it('text/plain is JSON when it parses, else the text', () => {
    expect(parseTextBody('{"client":"local"}')).toEqual({ client: 'local' });
    expect(parseTextBody('not json')).toBe('not json');
  });
});

describe('login', () => {
  it("perms: the user's rules and '*', strings sorted, {} when none", () => {
    const ea = parseExternalAuth({
      external_auth: { file: { saltdev: ['test.ping', '.*', '@wheel', { 'web*': ['test.*'] }, '@jobs'], '*': ['test.ping'] } },
    });
    expect(loginPerms(ea.file, 'saltdev')).toEqual(['.*', '@jobs', '@wheel', 'test.ping', { 'web*': ['test.*'] }]);
    expect(loginPerms(ea.file, 'other')).toEqual(['test.ping']);
    expect(loginPerms(undefined, 'x')).toEqual({});
  });

  it('checks htpasswd bcrypt, apr1 and SHA hashes, and text files with a hashtype', async () => {
    expect(htpasswdMatches(bcrypt.hashSync('pw', 4).replace(/^\$2b\$/, '$2y$'), 'pw')).toBe(true);
    expect(htpasswdMatches('$apr1$abcdefgh$5VEbMkemELfbhC5ck.U.z1', 'pw')).toBe(true);
    expect(htpasswdMatches('$apr1$abcdefgh$5VEbMkemELfbhC5ck.U.z1', 'px')).toBe(false);
    expect(htpasswdMatches('{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=', 'pw')).toBe(true);
    expect(htpasswdMatches('{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=', 'px')).toBe(false);
    expect(htpasswdMatches('plain', 'plain')).toBe(false);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobledger-eauth-'));
    try {
      const sha = '5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8'; // sha256('password')
      fs.writeFileSync(path.join(dir, 'users.txt'), `# users\nalice:${sha}\nbob:other\n`);
      const opts = fileEauthOptions({ filename: 'users.txt', filetype: 'text', hashtype: 'sha256' }, dir);
      expect(await fileEauthCheck(opts, 'alice', 'password')).toBe(true);
      expect(await fileEauthCheck(opts, 'alice', 'Password')).toBe(false);
      expect(await fileEauthCheck(opts, 'carol', 'password')).toBe(false);
      expect(() => fileEauthOptions({ filename: 'x', filetype: 'ldap' }, dir)).toThrow(/not supported/);
      expect(() => fileEauthOptions({}, dir)).toThrow(/\^filename/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sessions: 40 hex tokens, kept only as hashes, gone at expiry and logout', () => {
    let now = 1000;
    const store = new SessionStore(60, () => now);
    const { token, session } = store.create('saltdev', 'file');
    expect(token).toMatch(/^[0-9a-f]{40}$/);
    expect(session).toEqual({ user: 'saltdev', eauth: 'file', start: 1000, expire: 1060 });
    expect(store.get(token)).toEqual(session);
    expect(store.get('zz')).toBeUndefined();
    now = 1060;
    expect(store.get(token)).toBeUndefined();
    const again = store.create('saltdev', 'file');
    store.delete(again.token);
    expect(store.get(again.token)).toBeUndefined();
  });
});

describe('rest_cherrypy', () => {
  it('reads the section, defaults to loopback and TLS, and names what is missing', () => {
    expect(parseRestConfig({}, '/etc/master.yaml')).toBeUndefined();
    const c = parseRestConfig(
      { rest_cherrypy: { port: 8000, ssl_crt: 'api.crt', ssl_key: 'api.key', app: 'ui/index.html' } },
      '/etc/jl/master.yaml',
    )!;
    expect(c).toMatchObject({
      port: 8000,
      host: '127.0.0.1',
      tls: { cert: '/etc/jl/api.crt', key: '/etc/jl/api.key' },
      app: '/etc/jl/ui/index.html',
      appPath: '/app',
      tokenExpire: 43200,
    });
    expect(() => parseRestConfig({ rest_cherrypy: { port: 8000 } }, 'm.yaml')).toThrow(/ssl_crt and ssl_key, or disable_ssl/);
    expect(() => parseRestConfig({ rest_cherrypy: { port: 'x', disable_ssl: true } }, 'm.yaml')).toThrow(/port/);
  });

  it('HttpError carries the status and Salt defaults', () => {
    expect(new HttpError(401).message).toBe('No permission -- see authorization schemes');
    expect(new HttpError(503).retryable).toBe(true);
  });
});
