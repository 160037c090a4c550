import type pg from 'pg';
import type { JobLoad } from '@jobledger/core';
import { listJobsSql, rowLoad, type ListJobsQuery, type ListRow } from './list-jobs-sql.js';

/** A job's counters in the read model: agents expected, returned, and returned with success false. */
export interface JobCounts {
  expected: number;
  returned: number;
  failed: number;
}

/** One job as the jobs runner sees it: Salt's load (with `Minions`) and when its last return came. */
export interface StoredJob {
  load: JobLoad;
  endTime: Date | null;
}

/**
 * The master job cache as the jobs runner reads it (Salt's returner `get_load`, `get_jid`,
 * `get_jids`): queries on the read models the projector writes.
 */
export class JobStore {
  constructor(private readonly pool: pg.Pool) {}

  /** A page of jobs matching Salt's filters, oldest first (`{jid: load}` order). */
  async listJobs(q: ListJobsQuery): Promise<Array<{ jid: string; load: JobLoad; counts: JobCounts }>> {
    const { text, values } = listJobsSql(q);
    const { rows } = await this.pool.query<ListRow>({ text, values });
    return rows.reverse().map((r) => ({
      jid: r.jid,
      load: rowLoad(r),
      counts: { expected: r.expected ?? 0, returned: r.returned ?? 0, failed: r.failed ?? 0 },
    }));
  }

  /** The job's load (the `jobs` row, else the `jids` row), or undefined for an unknown jid. */
  async getJob(jid: string): Promise<StoredJob | undefined> {
    const { rows } = await this.pool.query<ListRow & { minions: unknown; end_time: Date | null }>(
      `SELECT jid, fun, arg, tgt, tgt_type, "user", metadata, minions, end_time FROM jobs WHERE jid = $1`,
      [jid],
    );
    const row = rows[0];
    if (row !== undefined) return { load: { ...rowLoad(row), Minions: row.minions }, endTime: row.end_time };
    const jids = await this.pool.query<{ load: unknown }>('SELECT load FROM jids WHERE jid = $1', [jid]);
    const load = jids.rows[0]?.load;
    if (load === undefined || load === null || typeof load !== 'object' || Array.isArray(load)) return undefined;
    return { load: load as JobLoad, endTime: null };
  }

  /** Salt's `get_jid` for an SQL cache: `{id: full_ret}`, the latest return of each id winning. */
  async getReturns(jid: string): Promise<Record<string, unknown>> {
    const { rows } = await this.pool.query<{ id: string; full_ret: unknown }>(
      'SELECT id, full_ret FROM salt_returns WHERE jid = $1 ORDER BY alter_time, id',
      [jid],
    );
    const out: Record<string, unknown> = {};
    for (const r of rows) out[r.id] = r.full_ret;
    return out;
  }

  /** The ids with a stored return, per jid (in the order they returned). */
  async returnedIds(jids: readonly string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (jids.length === 0) return out;
    const { rows } = await this.pool.query<{ jid: string; ids: string[] }>(
      `SELECT jid, array_agg(id ORDER BY first) AS ids
       FROM (SELECT jid, id, min(alter_time) AS first FROM salt_returns WHERE jid = ANY($1::text[]) GROUP BY jid, id) r
       GROUP BY jid`,
      [jids],
    );
    for (const r of rows) out.set(r.jid, r.ids);
    return out;
  }

  /** The projector's checkpoint: the last stream sequence applied to the read models. */
  async appliedSeq(consumer: string): Promise<number> {
    const { rows } = await this.pool.query<{ last_seq: string }>('SELECT last_seq FROM projector_checkpoint WHERE name = $1', [consumer]);
    return Number(rows[0]?.last_seq ?? 0);
  }
}
