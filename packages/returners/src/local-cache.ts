/**
 * Salt's `local_cache` returner (`salt/returners/local_cache.py`): the job cache on disk under
 * `<cachedir>/jobs/<h[:2]>/<h[2:]>/`, `h` the hex digest of the jid (`hash_type`, default
 * sha256), files in msgpack as `salt.payload` writes them (strings as str, bytes as bin).
 *
 * jobledger has no master `prep_jid`: `returner` and `saveLoad` create the job directory and
 * its `jid` file themselves (on the master every return rewrites `jid`, as Salt's `store_job`
 * does through `prep_jid`, so retention counts from the last return).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { decode, encode } from '@msgpack/msgpack';
import {
  endTimeText,
  formatJidInstance,
  formatJidInstanceExt,
  genJid,
  isJid,
  keepJobsSeconds,
  pyTruthy,
  ReturnerError,
  type ReturnLoad,
  type Returner,
  type ReturnerContext,
  type ReturnerModule,
} from '@jobledger/core';
import { errorText, isPlainObject } from './support.js';

const NAME = 'local_cache';
export const LOAD_P = '.load.p';
export const MINIONS_P = '.minions.p';
export const RETURN_P = 'return.p';
export const OUT_P = 'out.p';
export const ENDTIME = 'endtime';
const SYNDIC_MINIONS = /^\.minions\..+\.p$/;

/** `salt.utils.jid.jid_dir`: `<root>/<h[:2]>/<h[2:]>`. */
export function jidDir(jid: string, root: string, hashType = 'sha256'): string {
  const h = createHash(hashType).update(jid).digest('hex');
  return path.join(root, h.slice(0, 2), h.slice(2));
}

/**
 * Salt's `salt.utils.verify.valid_id`: a minion id names a directory, so it must not contain
 * `/`, `\\` or NUL, nor be empty, `.` or `..` (which would leave the job directory).
 */
export function isValidMinionId(id: unknown): id is string {
  return typeof id === 'string' && id !== '' && id !== '.' && id !== '..' && !/[/\\\0]/.test(id);
}

/** msgpack as `salt.payload.dumps` writes it. */
export function packPayload(value: unknown): Uint8Array {
  return encode(value, { ignoreUndefined: true });
}

/** msgpack as `salt.payload.loads` reads it (str → string, bin → bytes). */
export function unpackPayload(bytes: Uint8Array): unknown {
  return decode(bytes);
}

function hasCode(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch (err) {
    if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** Writes a file atomically: a temporary file in the same directory renamed over it. */
async function atomicWrite(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.___atomic_write${path.basename(file)}.${randomBytes(6).toString('hex')}`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

async function readPayload(file: string): Promise<unknown> {
  return unpackPayload(await readFile(file));
}

export class LocalCacheReturner implements Returner {
  readonly jobsRoot: string;
  readonly hashType: string;

  constructor(private readonly ctx: ReturnerContext) {
    const cachedir = ctx.config['cachedir'];
    if (typeof cachedir !== 'string' || cachedir === '') {
      throw new ReturnerError(NAME, 'the configuration key cachedir is not set', { retryable: false });
    }
    this.jobsRoot = path.join(cachedir, 'jobs');
    const hashType = ctx.config['hash_type'];
    this.hashType = typeof hashType === 'string' && hashType !== '' ? hashType : 'sha256';
    try {
      createHash(this.hashType);
    } catch (err) {
      throw new ReturnerError(NAME, `unknown hash_type '${this.hashType}'`, { retryable: false, cause: err });
    }
  }

  /** The job directory of `jid`; a jid not of Salt's forms is refused. */
  dirOf(jid: string): string {
    if (!isJid(jid)) {
      throw new ReturnerError(NAME, `invalid jid ${JSON.stringify(jid)}: a jid is 20 digits, optionally followed by _<suffix>`, {
        retryable: false,
      });
    }
    return jidDir(jid, this.jobsRoot, this.hashType);
  }

  /** The directory of minion `id`'s return in job directory `dir`; an id that could leave it is refused. */
  private minionDirOf(dir: string, id: unknown): string {
    if (!isValidMinionId(id)) {
      throw new ReturnerError(
        NAME,
        `invalid minion id ${JSON.stringify(id)}: an id must not be empty, '.', '..' or contain '/', '\\' or NUL`,
        {
          retryable: false,
        },
      );
    }
    return path.join(dir, id);
  }

  private fail(what: string, err: unknown): ReturnerError {
    if (err instanceof ReturnerError) return err;
    // A full or read-only disk, a permission, a path that is not a directory: all for an
    // operator to put right, after which the same write succeeds — so the return is held
    // (retryable), never skipped. Bad ids and jids are refused before any I/O (not retryable).
    return new ReturnerError(NAME, `${what}: ${errorText(err)}`, { retryable: true, cause: err });
  }

  private async writeJidFile(dir: string, jid: string, rewrite: boolean): Promise<void> {
    const file = path.join(dir, 'jid');
    if (!rewrite && (await exists(file))) return;
    await writeFile(file, jid);
  }

  async returner(ret: ReturnLoad): Promise<void> {
    const load: ReturnLoad = ret.jid === 'req' ? { ...ret, jid: genJid() } : ret;
    try {
      const dir = this.dirOf(load.jid);
      const minionDir = this.minionDirOf(dir, load.id);
      if (await exists(path.join(dir, 'nocache'))) return;
      await mkdir(dir, { recursive: true });
      await this.writeJidFile(dir, load.jid, this.ctx.role === 'master');
      try {
        await mkdir(minionDir);
      } catch (err) {
        if (hasCode(err, 'EEXIST')) {
          this.ctx.logger.error(
            { jid: load.jid, minion: load.id },
            `An extra return was detected from minion ${load.id}, please verify the minion, this could be a replay attack`,
          );
          return;
        }
        throw err;
      }
      const body: Record<string, unknown> = {};
      for (const key of ['return', 'retcode', 'success'] as const) {
        if (key in load) body[key] = load[key];
      }
      await atomicWrite(path.join(minionDir, RETURN_P), packPayload(body));
      if ('out' in load) await atomicWrite(path.join(minionDir, OUT_P), packPayload(load.out));
      // Salt's store_job with `job_cache_store_endtime`: the time of the job's latest return
      // (its `_stamp`, the time the agent sent it; else now), as `jid_to_time` writes it.
      if (pyTruthy(this.ctx.config['job_cache_store_endtime'])) {
        const stamp = typeof load['_stamp'] === 'string' ? new Date(`${load['_stamp'].slice(0, 23)}Z`) : undefined;
        await this.updateEndtime(load.jid, endTimeText(stamp && !Number.isNaN(stamp.getTime()) ? stamp : new Date()));
      }
    } catch (err) {
      throw this.fail(`could not store the return of ${load.id} for job ${load.jid}`, err);
    }
  }

  /** Salt's `update_endtime`: the `endtime` file of the job (plain text, no newline). */
  async updateEndtime(jid: string, time: string): Promise<void> {
    try {
      const dir = this.dirOf(jid);
      await mkdir(dir, { recursive: true });
      await atomicWrite(path.join(dir, ENDTIME), time);
    } catch (err) {
      throw this.fail(`could not store the end time of job ${jid}`, err);
    }
  }

  /** Salt's `get_endtime`: the `endtime` file's text, or false. */
  async getEndtime(jid: string): Promise<string | false> {
    const text = await readFile(path.join(this.dirOf(jid), ENDTIME), 'utf8').catch(() => '');
    return text === '' ? false : text;
  }

  async saveLoad(jid: string, load: Record<string, unknown>, minions?: readonly string[]): Promise<void> {
    try {
      const dir = this.dirOf(jid);
      await mkdir(dir, { recursive: true });
      await this.writeJidFile(dir, jid, false);
      await atomicWrite(path.join(dir, LOAD_P), packPayload(load));
      // Salt computes the targeted minions itself when none are given; jobledger stores the
      // list only when the caller knows it.
      if ('tgt' in load && load['tgt'] !== '' && minions !== undefined) {
        await atomicWrite(path.join(dir, MINIONS_P), packPayload([...minions]));
      }
    } catch (err) {
      throw this.fail(`could not store the load of job ${jid}`, err);
    }
  }

  async getLoad(jid: string): Promise<Record<string, unknown>> {
    const dir = this.dirOf(jid);
    let load: unknown;
    try {
      load = await readPayload(path.join(dir, LOAD_P));
    } catch (err) {
      if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return {};
      throw this.fail(`could not read the load of job ${jid}`, err);
    }
    const out: Record<string, unknown> = isPlainObject(load) ? { ...load } : {};
    const all = new Set<string>();
    let entries: string[] = [];
    try {
      entries = await readdir(dir);
    } catch {
      entries = [];
    }
    for (const name of entries.filter((n) => n === MINIONS_P || SYNDIC_MINIONS.test(n))) {
      try {
        const list = await readPayload(path.join(dir, name));
        if (Array.isArray(list)) for (const m of list) all.add(String(m));
      } catch (err) {
        this.ctx.logger.warn({ jid, err }, `Unable to read minion list ${path.join(dir, name)}`);
      }
    }
    if (all.size > 0) out['Minions'] = [...all].sort();
    return out;
  }

  async getJid(jid: string): Promise<Record<string, unknown>> {
    const dir = this.dirOf(jid);
    const out: Record<string, unknown> = {};
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch (err) {
      if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) return out;
      throw this.fail(`could not read job ${jid}`, err);
    }
    for (const name of entries.sort()) {
      if (name.startsWith('.')) continue;
      let data: unknown;
      try {
        data = await readPayload(path.join(dir, name, RETURN_P));
      } catch (err) {
        if (hasCode(err, 'ENOENT') || hasCode(err, 'ENOTDIR')) continue;
        throw this.fail(`could not read the return of ${name} for job ${jid}`, err);
      }
      const entry: Record<string, unknown> = isPlainObject(data) && 'return' in data ? { ...data } : { return: data };
      try {
        entry['out'] = await readPayload(path.join(dir, name, OUT_P));
      } catch (err) {
        if (!hasCode(err, 'ENOENT')) throw this.fail(`could not read the outputter of ${name} for job ${jid}`, err);
      }
      out[name] = entry;
    }
    return out;
  }

  /** Salt's `_walk_through`: every job directory with a readable `.load.p`. */
  private async walk(): Promise<{ jid: string; load: Record<string, unknown>; dir: string }[]> {
    let tops: string[];
    try {
      tops = await readdir(this.jobsRoot);
    } catch (err) {
      if (hasCode(err, 'ENOENT')) {
        throw new ReturnerError(NAME, `FileNotFoundError: [Errno 2] No such file or directory: '${this.jobsRoot}'`, {
          retryable: false,
          cause: err,
        });
      }
      throw this.fail('could not list the job cache', err);
    }
    const jobs: { jid: string; load: Record<string, unknown>; dir: string }[] = [];
    for (const top of tops.sort()) {
      let finals: string[];
      try {
        finals = await readdir(path.join(this.jobsRoot, top));
      } catch {
        continue;
      }
      for (const final of finals.sort()) {
        const dir = path.join(this.jobsRoot, top, final);
        let load: unknown;
        try {
          load = await readPayload(path.join(dir, LOAD_P));
        } catch (err) {
          if (!hasCode(err, 'ENOENT') && !hasCode(err, 'ENOTDIR')) {
            this.ctx.logger.error({ err }, `Failed to deserialize ${path.join(dir, LOAD_P)}`);
          }
          continue;
        }
        if (!isPlainObject(load) || Object.keys(load).length === 0) {
          this.ctx.logger.error({}, `Deserialization of job succeded but there is no data in ${path.join(dir, LOAD_P)}`);
          continue;
        }
        let jid = typeof load['jid'] === 'string' ? load['jid'] : undefined;
        jid ??= await readFile(path.join(dir, 'jid'), 'utf8').catch(() => undefined);
        if (jid) jobs.push({ jid, load, dir });
      }
    }
    return jobs;
  }

  async getJids(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    const withEndtime = Boolean(this.ctx.config['job_cache_store_endtime']);
    for (const { jid, load, dir } of await this.walk()) {
      const record = formatJidInstance(jid, load);
      if (withEndtime) {
        const endtime = await readFile(path.join(dir, ENDTIME), 'utf8').catch(() => '');
        if (endtime) record['EndTime'] = endtime;
      }
      out[jid] = record;
    }
    return out;
  }

  async getJidsFilter(count: number, filterFindJob = true): Promise<Record<string, unknown>[]> {
    const kept: { jid: string; record: Record<string, unknown> }[] = [];
    for (const { jid, load } of await this.walk()) {
      const record = formatJidInstanceExt(jid, load);
      if (filterFindJob && record['Function'] === 'saltutil.find_job') continue;
      kept.push({ jid, record });
    }
    kept.sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0));
    return count > 0 ? kept.slice(-count).map((k) => k.record) : [];
  }

  /** Minion ids that have a return in the cache (not a Salt local_cache function). */
  async getMinions(): Promise<string[]> {
    const ids = new Set<string>();
    let tops: string[];
    try {
      tops = await readdir(this.jobsRoot);
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return [];
      throw this.fail('could not list the job cache', err);
    }
    for (const top of tops) {
      const finals = await readdir(path.join(this.jobsRoot, top)).catch(() => [] as string[]);
      for (const final of finals) {
        const dir = path.join(this.jobsRoot, top, final);
        const entries = await readdir(dir).catch(() => [] as string[]);
        for (const name of entries) {
          if (name.startsWith('.')) continue;
          if (await exists(path.join(dir, name, RETURN_P))) ids.add(name);
        }
      }
    }
    return [...ids].sort();
  }

  async cleanOldJobs(): Promise<void> {
    const keep = keepJobsSeconds(this.ctx.config);
    if (keep === 0) return;
    let tops: string[];
    try {
      tops = await readdir(this.jobsRoot);
    } catch (err) {
      if (hasCode(err, 'ENOENT')) return;
      throw this.fail('could not list the job cache', err);
    }
    const now = Date.now();
    const old = (ctimeMs: number) => (now - ctimeMs) / 1000 > keep;
    const remove = async (p: string) => {
      try {
        await rm(p, { recursive: true, force: true });
      } catch (err) {
        this.ctx.logger.error({ err }, `Unable to remove ${p}: ${errorText(err)}`);
      }
    };
    const emptyTops: string[] = [];
    for (const top of tops) {
      const tPath = path.join(this.jobsRoot, top);
      let finals: string[];
      try {
        finals = await readdir(tPath);
      } catch {
        continue;
      }
      if (finals.length === 0) {
        emptyTops.push(tPath);
        continue;
      }
      for (const final of finals) {
        const fPath = path.join(tPath, final);
        let jidStat;
        try {
          jidStat = await stat(path.join(fPath, 'jid'));
        } catch {
          jidStat = undefined;
        }
        if (!jidStat?.isFile()) await remove(fPath);
        else if (old(jidStat.ctimeMs)) await remove(fPath);
      }
    }
    for (const tPath of emptyTops) {
      const s = await stat(tPath).catch(() => undefined);
      if (s && old(s.ctimeMs)) await remove(tPath);
    }
  }
}

export const localCache: ReturnerModule = {
  name: NAME,
  description: "Salt's default job cache: msgpack files under <cachedir>/jobs",
  create: (ctx) => new LocalCacheReturner(ctx),
};
