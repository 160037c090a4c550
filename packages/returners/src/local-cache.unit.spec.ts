import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { decode } from '@msgpack/msgpack';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReturnerError, type Returner, type ReturnLoad } from '@jobledger/core';
import { jidDir, packPayload } from './local-cache.js';
import { ReturnerRegistry } from './registry.js';
import { recordingLogger, type RecordingLogger } from './testing/recording-logger.js';

const JID = '20250301120000123456';

let dir: string;
let logger: RecordingLogger;
let registry: ReturnerRegistry;

async function cache(config: Record<string, unknown> = {}, role: 'agent' | 'master' = 'master'): Promise<Returner> {
  registry = new ReturnerRegistry({ role, hostId: 'master_master', config: { cachedir: dir, ...config }, logger });
  return registry.get('local_cache');
}

function ret(id: string, jid = JID, extra: Partial<ReturnLoad> = {}): ReturnLoad {
  return { id, jid, fun: 'test.ping', fun_args: [], return: true, retcode: 0, success: true, ...extra };
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'jobledger-local-cache-'));
  logger = recordingLogger();
});

afterEach(async () => {
  await registry?.closeAll();
  await rm(dir, { recursive: true, force: true });
});

describe('local_cache layout', () => {
  it('with job_cache_store_endtime, each return writes the endtime file as jid_to_time does', async () => {
    const lc = await cache({ job_cache_store_endtime: true });
    const jobDir = jidDir(JID, path.join(dir, 'jobs'));
    await lc.returner(ret('web1', JID, { _stamp: '2025-03-01T12:00:01.250000' }));
    expect(await readFile(path.join(jobDir, 'endtime'), 'utf8')).toBe('2025, Mar 01 12:00:01.250000');
    await lc.returner(ret('web2', JID, { _stamp: '2025-03-01T12:00:03.500000' }));
    expect(await lc.getEndtime!(JID)).toBe('2025, Mar 01 12:00:03.500000');
    expect(await lc.getEndtime!('20250301120000999999')).toBe(false);

    const plain = await cache();
    await plain.returner(ret('web1', '20250301120000222222'));
    expect(await readdir(jidDir('20250301120000222222', path.join(dir, 'jobs')))).not.toContain('endtime');
  });

  it('hashes a jid as salt.utils.jid.jid_dir does', () => {
    expect(jidDir('20160603132323715452', '/c/jobs')).toBe('/c/jobs/31/c56eed380a4e899ae12bc42563cfdfc53066fb4a6b53e2378a08ac49064539');
    expect(jidDir('20160603132323715452', '/c/jobs', 'md5')).not.toBe(jidDir('20160603132323715452', '/c/jobs'));
  });

  it('packs msgpack exactly as salt.payload (msgpack-python, use_bin_type=True) does', () => {
    // msgpack.packb({'return': True, 'retcode': 0, 'success': True}, use_bin_type=True)
    expect(Buffer.from(packPayload({ return: true, retcode: 0, success: true })).toString('hex')).toBe(
      '83a672657475726ec3a7726574636f646500a773756363657373c3',
    );
    // strings as str (0xa3 fixstr), floats as float64 (0xcb), None as nil (0xc0)
    expect(Buffer.from(packPayload({ return: { pkg: 'vim', n: 1.5, l: [1, -1, null] } })).toString('hex')).toBe(
      '81a672657475726e83a3706b67a376696da16ecb3ff8000000000000a16c9301ffc0',
    );
  });

  it('returner writes jid, <minion>/return.p and out.p; a second return of the same minion is refused', async () => {
    const lc = await cache();
    await lc.returner(
      ret('web1', JID, { return: { 'pkg_|-vim_|-vim_|-installed': { result: true } }, out: 'highstate', retcode: 2, success: false }),
    );
    const jobDir = jidDir(JID, path.join(dir, 'jobs'));
    expect(await readFile(path.join(jobDir, 'jid'), 'utf8')).toBe(JID);
    expect(decode(await readFile(path.join(jobDir, 'web1', 'return.p')))).toEqual({
      return: { 'pkg_|-vim_|-vim_|-installed': { result: true } },
      retcode: 2,
      success: false,
    });
    expect(decode(await readFile(path.join(jobDir, 'web1', 'out.p')))).toBe('highstate');
    expect((await readdir(path.join(jobDir, 'web1'))).sort()).toEqual(['out.p', 'return.p']);

    await lc.returner(ret('web1', JID, { return: 'replayed' }));
    expect(decode(await readFile(path.join(jobDir, 'web1', 'return.p')))).toMatchObject({ retcode: 2 });
    expect(logger.messages('error')).toContain(
      'An extra return was detected from minion web1, please verify the minion, this could be a replay attack',
    );
  });

  it('stores only return, retcode and success, and skips a jid marked nocache', async () => {
    const lc = await cache();
    await lc.returner({ id: 'db1', jid: JID, fun: 'cmd.run', fun_args: ['id'], return: 'uid=0(root)', cmd: '_return', _stamp: 'x' });
    const jobDir = jidDir(JID, path.join(dir, 'jobs'));
    expect(decode(await readFile(path.join(jobDir, 'db1', 'return.p')))).toEqual({ return: 'uid=0(root)' });

    const other = '20250301120000999999';
    const otherDir = jidDir(other, path.join(dir, 'jobs'));
    await mkdir(otherDir, { recursive: true });
    await writeFile(path.join(otherDir, 'nocache'), '');
    await lc.returner(ret('db1', other));
    expect(await readdir(otherDir)).toEqual(['nocache']);
  });

  it('saveLoad writes .load.p and .minions.p; getLoad merges syndic lists into a sorted Minions', async () => {
    const lc = await cache();
    const load = { fun: 'test.ping', arg: [], tgt: 'web*', tgt_type: 'glob', jid: JID, user: 'root' };
    await lc.saveLoad!(JID, load, ['web2', 'web1']);
    const jobDir = jidDir(JID, path.join(dir, 'jobs'));
    expect(decode(await readFile(path.join(jobDir, '.load.p')))).toEqual(load);
    expect(decode(await readFile(path.join(jobDir, '.minions.p')))).toEqual(['web2', 'web1']);
    expect(await readFile(path.join(jobDir, 'jid'), 'utf8')).toBe(JID);
    await writeFile(path.join(jobDir, '.minions.syndic1.p'), packPayload(['web3', 'web1']));
    expect(await lc.getLoad!(JID)).toEqual({ ...load, Minions: ['web1', 'web2', 'web3'] });
    expect(await lc.getLoad!('20250101000000000000')).toEqual({});
  });

  it('getJid gives {minion: {return, retcode?, success?, out?}}, wrapping old-format return.p', async () => {
    const lc = await cache();
    await lc.returner(ret('web1', JID, { out: 'nested' }));
    await lc.returner({ id: 'web2', jid: JID, fun: 'test.ping', fun_args: [], return: false });
    const jobDir = jidDir(JID, path.join(dir, 'jobs'));
    await mkdir(path.join(jobDir, 'old'));
    await writeFile(path.join(jobDir, 'old', 'return.p'), packPayload('bare value'));
    await mkdir(path.join(jobDir, 'noreturn'));
    expect(await lc.getJid!(JID)).toEqual({
      web1: { return: true, retcode: 0, success: true, out: 'nested' },
      web2: { return: false },
      old: { return: 'bare value' },
    });
    expect(await lc.getJid!('20200101000000000000')).toEqual({});
  });

  it('getJids formats every load; getJidsFilter keeps the last count, oldest first, without find_job', async () => {
    const lc = await cache();
    await expect(lc.getJids!()).rejects.toThrow(`FileNotFoundError: [Errno 2] No such file or directory: '${path.join(dir, 'jobs')}'`);
    const jids = ['20250301120000000001', '20250301120000000002', '20250301120000000003', '20250301120000000004'];
    await lc.saveLoad!(jids[2]!, { jid: jids[2], fun: 'saltutil.find_job', arg: [jids[0]], tgt: 'web1', tgt_type: 'list' }, ['web1']);
    await lc.saveLoad!(jids[0]!, { jid: jids[0], fun: 'test.ping', arg: [], tgt: '*', tgt_type: 'glob', user: 'alice' }, ['web1']);
    await lc.saveLoad!(jids[1]!, { jid: jids[1], fun: 'cmd.run', arg: ['ls'], tgt: 'web1' }, ['web1']);
    await lc.saveLoad!(jids[3]!, { jid: jids[3], fun: 'test.echo', arg: ['hi'], tgt: 'web1' }, ['web1']);
    const all = await lc.getJids!();
    expect(Object.keys(all).sort()).toEqual(jids);
    expect(all[jids[0]!]).toEqual({
      Function: 'test.ping',
      Arguments: [],
      Target: '*',
      'Target-type': 'glob',
      User: 'alice',
      StartTime: '2025, Mar 01 12:00:00.000001',
    });
    const last2 = await lc.getJidsFilter!(2);
    expect(last2.map((j) => j['JID'])).toEqual([jids[1], jids[3]]);
    const withFind = await lc.getJidsFilter!(2, false);
    expect(withFind.map((j) => j['JID'])).toEqual([jids[2], jids[3]]);
    expect(await lc.getJidsFilter!(0)).toEqual([]);
  });

  it('getMinions lists the ids that returned', async () => {
    const lc = await cache();
    expect(await lc.getMinions!()).toEqual([]);
    await lc.returner(ret('web2'));
    await lc.returner(ret('web1', '20250301120000000042'));
    expect(await lc.getMinions!()).toEqual(['web1', 'web2']);
  });

  it('cleanOldJobs removes jobs whose jid file is older than keep_jobs_seconds and dirs without jid at once', async () => {
    const lc = await cache({ keep_jobs_seconds: 1 });
    const oldJid = '20250301120000000100';
    const newJid = '20250301120000000200';
    await lc.returner(ret('web1', oldJid));
    const broken = path.join(dir, 'jobs', 'ab', 'cdef');
    await mkdir(broken, { recursive: true });
    await sleep(1300);
    await lc.returner(ret('web1', newJid));
    await lc.cleanOldJobs!();
    expect(await lc.getJid!(oldJid)).toEqual({});
    expect(await lc.getJid!(newJid)).toEqual({ web1: { return: true, retcode: 0, success: true } });
    await expect(readdir(broken)).rejects.toMatchObject({ code: 'ENOENT' });

    const never = await cache({ keep_jobs_seconds: 0 });
    await sleep(1100);
    await never.cleanOldJobs!();
    expect(await never.getJid!(newJid)).toEqual({ web1: { return: true, retcode: 0, success: true } });
  });

  it('on an agent the jid file is written once; without cachedir the returner cannot be created', async () => {
    const lc = await cache({}, 'agent');
    await lc.returner(ret('web1'));
    const jidFile = path.join(jidDir(JID, path.join(dir, 'jobs')), 'jid');
    expect(await readFile(jidFile, 'utf8')).toBe(JID);

    registry = new ReturnerRegistry({ role: 'agent', hostId: 'web1', config: {}, logger });
    const err = await registry.get('local_cache').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReturnerError);
    expect((err as ReturnerError).message).toContain('cachedir is not set');
    expect((err as ReturnerError).retryable).toBe(false);
  });

  it('refuses a minion id or jid that would leave <cachedir>/jobs, writing nothing', async () => {
    const lc = await cache();
    const badIds = ['../../../escaped', '..', '.', '', 'a/b', 'a\\b', 'a\0b'];
    for (const id of badIds) {
      const err = await lc.returner(ret(id)).catch((e: unknown) => e);
      expect(err, id).toBeInstanceOf(ReturnerError);
      expect((err as ReturnerError).retryable).toBe(false);
      expect((err as ReturnerError).message).toContain('invalid minion id');
    }
    const badJids = ['../../escaped', '2025030112000012345', '20250301120000123456_', 'x'.repeat(20), '/etc/passwd'];
    for (const jid of badJids) {
      for (const call of [
        () => lc.returner(ret('web1', jid)),
        () => lc.saveLoad!(jid, { fun: 'test.ping' }, ['web1']),
        () => lc.getLoad!(jid),
        () => lc.getJid!(jid),
      ]) {
        const err = await call().catch((e: unknown) => e);
        expect(err, jid).toBeInstanceOf(ReturnerError);
        expect((err as ReturnerError).retryable).toBe(false);
        expect((err as ReturnerError).message).toContain('invalid jid');
      }
    }
    // Nothing was written anywhere: not outside jobs/, not even a job directory.
    expect(await readdir(dir)).toEqual([]);
    // Salt's unique_jid form and ids with dots are fine.
    await lc.returner(ret('web1.example.com', '20250301120000123456_4242'));
    expect(await lc.getJid!('20250301120000123456_4242')).toEqual({ 'web1.example.com': { return: true, retcode: 0, success: true } });
  });
});
