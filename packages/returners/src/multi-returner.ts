/**
 * Salt's `multi_returner`: the returners listed in the configuration key `multi_returner`
 * (a list, or a comma-separated string) act as one. Writes (`returner`, `save_load`,
 * `clean_old_jobs`, and here `event_return`) go to each in turn; reads (`get_load`, `get_jid`,
 * `get_jids`) merge their answers, later returners winning. As recent Salt (PR #67880), a
 * minion's return load (`cmd: "_return"`) is not saved as the job's load in `local_cache`.
 */
import {
  notImplementedText,
  ReturnerError,
  type ReturnLoad,
  type Returner,
  type ReturnerContext,
  type ReturnerEvent,
  type ReturnerModule,
} from '@jobledger/core';

const NAME = 'multi_returner';

function listed(value: unknown): string[] {
  const items = Array.isArray(value) ? value.map(String) : typeof value === 'string' ? value.split(',') : [];
  return items.map((s) => s.trim()).filter((s) => s !== '');
}

class MultiReturner implements Returner {
  private readonly names: string[];

  constructor(private readonly ctx: ReturnerContext) {
    this.names = listed(ctx.config[NAME]);
    if (this.names.length === 0) {
      throw new ReturnerError(NAME, 'the configuration key multi_returner lists no returners', { retryable: false });
    }
    if (this.names.includes(NAME)) {
      throw new ReturnerError(NAME, 'multi_returner cannot list itself', { retryable: false });
    }
  }

  private async each(): Promise<{ name: string; returner: Returner }[]> {
    const out: { name: string; returner: Returner }[] = [];
    for (const name of this.names) out.push({ name, returner: await this.ctx.load(name) });
    return out;
  }

  private missing(name: string, fn: string): ReturnerError {
    return new ReturnerError(NAME, notImplementedText(name, fn), { retryable: false });
  }

  async returner(ret: ReturnLoad): Promise<void> {
    for (const { returner } of await this.each()) await returner.returner(ret);
  }

  async saveLoad(jid: string, load: Record<string, unknown>, minions?: readonly string[]): Promise<void> {
    for (const { name, returner } of await this.each()) {
      if (name === 'local_cache' && load['cmd'] === '_return') continue;
      if (!returner.saveLoad) throw this.missing(name, 'save_load');
      await returner.saveLoad(jid, load, minions);
    }
  }

  async eventReturn(events: readonly ReturnerEvent[]): Promise<void> {
    for (const { name, returner } of await this.each()) {
      if (!returner.eventReturn) throw this.missing(name, 'event_return');
      await returner.eventReturn(events);
    }
  }

  /** Merges `read` of every listed returner; `undefined` from `read` means it lacks the function. */
  private async merge(
    saltName: string,
    read: (r: Returner) => Promise<Record<string, unknown>> | undefined,
  ): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const { name, returner } of await this.each()) {
      const answer = read(returner);
      if (!answer) throw this.missing(name, saltName);
      Object.assign(out, await answer);
    }
    return out;
  }

  getLoad(jid: string): Promise<Record<string, unknown>> {
    return this.merge('get_load', (r) => r.getLoad?.(jid));
  }

  getJid(jid: string): Promise<Record<string, unknown>> {
    return this.merge('get_jid', (r) => r.getJid?.(jid));
  }

  getJids(): Promise<Record<string, unknown>> {
    return this.merge('get_jids', (r) => r.getJids?.());
  }

  async cleanOldJobs(): Promise<void> {
    for (const { returner } of await this.each()) await returner.cleanOldJobs?.();
  }
}

export const multiReturner: ReturnerModule = {
  name: NAME,
  description: 'Writes to every returner of the multi_returner list and merges their reads',
  create: (ctx) => new MultiReturner(ctx),
};
