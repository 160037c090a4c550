import type { JobControl, ProcRecord, SignalResult } from './modules/index.js';
import { fileName, type ProcDir, type ProcEntry, type ProcFile } from './proc-files.js';
import { carriesJobMarker, isAlive, signalProcessTree } from './processes.js';

/** A job this agent process runs for the id (from before its proc file is written until its end is recorded). */
export interface LocalJob {
  /** Its proc file content; `pid` is the agent's own until a shell function's child is spawned. */
  readonly proc: ProcFile;
  /** Cancelled or killed while running inside the agent. */
  readonly aborted: boolean;
  /** Its end is being recorded: it runs no more. */
  readonly finishing: boolean;
  /** Ends the job running inside the agent as if `signal` had killed its process. */
  abort(signal: number): void;
}

/** What the agent provides to one id's job control. */
export interface JobControlHooks {
  /** The job `jid` of this id that this process runs, if any. */
  local(jid: string): LocalJob | undefined;
  /** The jobs of this id that this process runs. */
  locals(): LocalJob[];
  /**
   * A proc file whose job no longer runs and that no job of this process will clean up: records
   * the job as lost (`proc.ended`) and removes the file.
   */
  lost(entry: ProcEntry): Promise<void>;
  /** Appends `proc.signalled` for a signal sent to the job. */
  signalled(proc: ProcFile, signal: number): Promise<void>;
}

type Liveness = 'live' | 'gone' | 'stale';

/**
 * One agent id's running jobs as Salt's `saltutil` sees them: its proc directory, where a file
 * counts only while its job runs — a job of this process (not yet ending), or a child process
 * still alive that carries the job's marker. Any other file is stale: removed, and its job
 * recorded as lost.
 */
export class ProcJobs implements JobControl {
  constructor(
    private readonly dir: ProcDir,
    /** The agent id whose jobs these are. */
    private readonly id: string,
    private readonly hooks: JobControlHooks,
  ) {}

  async running(): Promise<ProcRecord[]> {
    const out: ProcRecord[] = [];
    const listed = new Set<string>();
    for (const entry of await this.dir.list()) {
      if (entry.data) listed.add(entry.data.jid);
      const record = await this.resolve(entry);
      if (record) out.push(record);
    }
    // Jobs of this process that have no proc file yet (a function inside the agent, just started).
    for (const local of this.hooks.locals()) {
      if (!listed.has(local.proc.jid) && (await this.localLive(local))) out.push({ ...local.proc });
    }
    return out.sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0));
  }

  async find(jid: string): Promise<ProcRecord | undefined> {
    const entry = await this.dir.read(jid);
    if (!entry) {
      const local = this.hooks.local(jid);
      return local && (await this.localLive(local)) ? { ...local.proc } : undefined;
    }
    const record = await this.resolve(entry);
    return record?.jid === jid ? record : undefined;
  }

  async signal(jid: string, signal: number): Promise<SignalResult> {
    const record = await this.find(jid);
    if (!record) return { kind: 'unknown' };
    const local = this.hooks.local(jid);
    if (local && local.proc.pid === process.pid) {
      // Runs inside the agent (or its child is not spawned yet): ended as if its process got the signal.
      local.abort(signal);
      await this.hooks.signalled(local.proc, signal);
      return { kind: 'sent', pid: record.pid };
    }
    const pid = local?.proc.pid ?? record.pid;
    if (!(await signalProcessTree(pid, { jid, id: this.id }, signal))) {
      // Gone since it was found: the job of this process records its own end; any other is lost.
      if (!local) await this.hooks.lost({ name: fileName(jid), data: record });
      return { kind: 'not-running' };
    }
    await this.hooks.signalled(local?.proc ?? record, signal);
    return { kind: 'sent', pid };
  }

  /** The entry's proc record while its job runs; cleans up a stale file. */
  private async resolve(entry: ProcEntry): Promise<ProcRecord | undefined> {
    const state = await this.liveness(entry);
    if (state === 'stale') await this.hooks.lost(entry);
    if (state !== 'live') return undefined;
    const local = entry.data && this.hooks.local(entry.data.jid);
    return { ...(local ? local.proc : entry.data!) };
  }

  /** A job of this process runs until its end is being recorded. */
  private async localLive(local: LocalJob): Promise<boolean> {
    if (local.finishing) return false;
    const pid = local.proc.pid;
    if (pid === process.pid) return !local.aborted;
    return isAlive(pid);
  }

  private async liveness({ name, data }: ProcEntry): Promise<Liveness> {
    const local = data && this.hooks.local(data.jid);
    if (local) return (await this.localLive(local)) ? 'live' : 'gone';
    // A child process of a job this process does not run (another agent process hosting the id).
    if (data && data.pid !== process.pid && (await isAlive(data.pid)) && (await carriesJobMarker(data.pid, { jid: data.jid, id: this.id })))
      return 'live';
    // A job of this process removes its file before it forgets the job: a file still there now is
    // not one that ended here since it was read.
    return (await this.dir.existsName(name)) ? 'stale' : 'gone';
  }
}
