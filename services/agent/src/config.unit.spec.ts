import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@jobledger/runtime';
import { agentCachedir, defaultGroupName, loadConfig } from './config.js';

const base = { JOBLEDGER_NATS_URL: 'nats://127.0.0.1:4222', JOBLEDGER_HOME: '/srv/jl', JOBLEDGER_AGENT_IDS: 'b.example, a.example' };

describe('loadConfig', () => {
  it('reads the ids and applies the defaults', () => {
    const c = loadConfig(base);
    expect(c).toMatchObject({
      natsUrl: 'nats://127.0.0.1:4222',
      stream: 'LEDGER',
      home: '/srv/jl',
      ids: ['b.example', 'a.example'],
      cachedirRoot: '/srv/jl/agents',
      maxInflight: 64,
      catchupSeconds: 3600,
      stopGraceMs: 5000,
      procFileAfterMs: 500,
    });
    expect(c.readyFile).toBeUndefined();
    expect(loadConfig({ ...base, JOBLEDGER_AGENT_PROC_FILE_AFTER_MS: '0' }).procFileAfterMs).toBe(0);
  });

  it('names the group agent-<first 16 hex of sha256(sorted ids joined by \\n)>', () => {
    const digest = createHash('sha256').update('a.example\nb.example').digest('hex');
    expect(loadConfig(base).group).toBe(`agent-${digest.slice(0, 16)}`);
    expect(defaultGroupName(['b.example', 'a.example'])).toBe(defaultGroupName(['a.example', 'b.example']));
    expect(loadConfig({ ...base, JOBLEDGER_AGENT_GROUP: 'rack-7' }).group).toBe('rack-7');
  });

  it('puts each id’s cachedir under the root, named by its encoded id', () => {
    const c = loadConfig({ ...base, JOBLEDGER_AGENT_CACHEDIR: '/var/cache/jl' });
    expect(agentCachedir(c.cachedirRoot, '192.168.153.141')).toBe(path.join('/var/cache/jl', '192_2E168_2E153_2E141'));
  });

  it('accepts ids with dots, as Salt does (web1.example.com, 192.168.1.2, ..hidden)', () => {
    expect(loadConfig({ ...base, JOBLEDGER_AGENT_IDS: 'web1.example.com,192.168.1.2,..hidden' }).ids).toEqual([
      'web1.example.com',
      '192.168.1.2',
      '..hidden',
    ]);
  });

  it('reads the limits', () => {
    const c = loadConfig({ ...base, JOBLEDGER_AGENT_MAX_INFLIGHT: '8', JOBLEDGER_CATCHUP_SECONDS: '60', JOBLEDGER_READY_FILE: '/tmp/r' });
    expect(c).toMatchObject({ maxInflight: 8, catchupSeconds: 60, readyFile: '/tmp/r' });
  });

  it.each([
    [{ JOBLEDGER_AGENT_IDS: undefined }, 'JOBLEDGER_AGENT_IDS is not set'],
    [{ JOBLEDGER_AGENT_IDS: 'a,,b' }, "JOBLEDGER_AGENT_IDS has an empty id: 'a,,b'"],
    [{ JOBLEDGER_AGENT_IDS: 'a,b,a' }, "JOBLEDGER_AGENT_IDS names 'a' twice"],
    [{ JOBLEDGER_AGENT_IDS: 'a,../../x' }, "JOBLEDGER_AGENT_IDS has an invalid id '../../x'"],
    [{ JOBLEDGER_AGENT_IDS: '..' }, "JOBLEDGER_AGENT_IDS has an invalid id '..'"],
    [{ JOBLEDGER_AGENT_IDS: 'web1,.' }, "JOBLEDGER_AGENT_IDS has an invalid id '.'"],
    [{ JOBLEDGER_AGENT_IDS: 'a\\b' }, "JOBLEDGER_AGENT_IDS has an invalid id 'a\\b'"],
    [{ JOBLEDGER_AGENT_IDS: 'a\0b' }, 'JOBLEDGER_AGENT_IDS has an invalid id'],
    [{ JOBLEDGER_NATS_URL: undefined }, 'JOBLEDGER_NATS_URL is not set'],
    [{ JOBLEDGER_AGENT_MAX_INFLIGHT: '0' }, "JOBLEDGER_AGENT_MAX_INFLIGHT must be a positive integer, got '0'"],
    [{ JOBLEDGER_AGENT_MAX_INFLIGHT: 'lots' }, "JOBLEDGER_AGENT_MAX_INFLIGHT must be a number, got 'lots'"],
    [{ JOBLEDGER_CATCHUP_SECONDS: '-1' }, "JOBLEDGER_CATCHUP_SECONDS must not be negative, got '-1'"],
    [{ JOBLEDGER_AGENT_GROUP: 'a.b' }, "JOBLEDGER_AGENT_GROUP must be 1-64 characters of A-Z a-z 0-9 _ -, got 'a.b'"],
  ])('fails fast naming the variable: %j', (patch, message) => {
    const env: Record<string, string | undefined> = { ...base, ...patch };
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});

describe('minion configuration', () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'jl-minion-'));
  afterAll(() => rmSync(home, { recursive: true, force: true }));
  const env = { ...base, JOBLEDGER_HOME: home };

  it('defaults: no file, cachedir <home>/cache, extension_modules <home>/extmods', () => {
    const c = loadConfig(env);
    expect(c).toMatchObject({
      minionConfigFile: path.join(home, 'minion.yaml'),
      cachedir: path.join(home, 'cache'),
      extensionModules: path.join(home, 'extmods'),
    });
    expect(c.minion).toEqual({ cachedir: path.join(home, 'cache'), extension_modules: path.join(home, 'extmods') });
  });

  it('reads minion.yaml (relative paths from the home) or JOBLEDGER_MINION_CONFIG, keeping the returner options', () => {
    writeFileSync(path.join(home, 'minion.yaml'), 'cachedir: c2\nrawfile_json.filename: /tmp/r.json\nreturner.pgjsonb:\n  host: db\n');
    const c = loadConfig(env);
    expect(c.cachedir).toBe(path.join(home, 'c2'));
    expect(c.minion).toMatchObject({
      cachedir: path.join(home, 'c2'),
      'rawfile_json.filename': '/tmp/r.json',
      'returner.pgjsonb': { host: 'db' },
    });
    const other = path.join(home, 'other.yaml');
    writeFileSync(other, '{"extension_modules": "/srv/ext"}');
    expect(loadConfig({ ...env, JOBLEDGER_MINION_CONFIG: other }).extensionModules).toBe('/srv/ext');
  });

  it('refuses a file that is not a mapping, or a path key that is not a string, naming the file', () => {
    const bad = path.join(home, 'bad.yaml');
    writeFileSync(bad, '- a\n- b\n');
    expect(() => loadConfig({ ...env, JOBLEDGER_MINION_CONFIG: bad })).toThrow(`${bad} must hold a mapping`);
    writeFileSync(bad, 'cachedir: [1]\n');
    expect(() => loadConfig({ ...env, JOBLEDGER_MINION_CONFIG: bad })).toThrow(ConfigError);
    expect(() => loadConfig({ ...env, JOBLEDGER_MINION_CONFIG: bad })).toThrow(`${bad}: cachedir must be a path`);
  });
});
