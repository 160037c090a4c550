import { authCheck, fnmatchToRegExp, specCheck, type AclRule, type LedgerEvent } from '@jobledger/core';

/**
 * Which events of the ledger a user of the API may see on `/events` (salt-api shows every user
 * every event): those of the jobs its `external_auth` rules would have let it run, or that it
 * ran itself; runner jobs with a runner rule; key and agent events with `@wheel`; its own refused
 * attempts. A job's later events (returns, processes) follow its publication's verdict; for one
 * whose publication the feed did not see (resumed in the middle of a job), the publication is
 * read from the ledger.
 */
export class EventVisibility {
  /** jid → may the user see it (bounded: the oldest verdicts are dropped first). */
  private readonly jobs = new Map<string, boolean>();

  constructor(
    private readonly user: string,
    private readonly rules: readonly AclRule[],
    /** A job's publication, for the events of a job whose publication the feed did not see. */
    private readonly publication: (jid: string) => Promise<LedgerEvent | undefined>,
    private readonly maxJobs = 10_000,
  ) {}

  async visible(event: LedgerEvent): Promise<boolean> {
    switch (event.type) {
      case 'job.published': {
        const d = event.data;
        const ok = d.user === this.user || this.mayRun(d.fun, d.arg, d.minions);
        this.remember(d.jid, ok);
        return ok;
      }
      case 'job.returned':
      case 'proc.started':
      case 'proc.signalled':
      case 'proc.ended':
      case 'returner.failed':
        return this.jobs.get(event.data.jid) ?? (await this.unseenJob(event.data.jid));
      case 'runner.published':
      case 'runner.returned':
        return event.data.user === this.user || specCheck(this.rules, event.data.fun.slice('runner.'.length), 'runner');
      case 'publish.denied':
        return event.data.user === this.user;
      case 'agent.started':
      case 'key.accepted':
      case 'key.rejected':
      case 'key.deleted':
        return specCheck(this.rules, 'key.list_all', 'wheel');
    }
  }

  /** Judged on the job's publication read from the ledger; none there (or unreadable): hidden. */
  private async unseenJob(jid: string): Promise<boolean> {
    let published: LedgerEvent | undefined;
    try {
      published = await this.publication(jid);
    } catch {
      return false;
    }
    if (published?.type !== 'job.published') {
      this.remember(jid, false);
      return false;
    }
    return this.visible(published);
  }

  private mayRun(fun: string, arg: readonly unknown[], minions: readonly string[]): boolean {
    return authCheck(
      this.rules,
      { user: this.user, fun, arg, minions },
      // A target rule is matched as a glob on the ids (grain or compound rules: not shown).
      { compoundMinions: (expr) => minions.filter((id) => fnmatchToRegExp(expr).test(id)) },
    ).allowed;
  }

  private remember(jid: string, ok: boolean): void {
    this.jobs.set(jid, ok);
    if (this.jobs.size > this.maxJobs) this.jobs.delete(this.jobs.keys().next().value!);
  }
}
