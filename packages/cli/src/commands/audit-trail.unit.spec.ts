import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import {
  encodeEvent,
  jobPublishedTag,
  jobReturnedTag,
  jidToMicros,
  minionStartedText,
  procTag,
  runnerPublishedTag,
  subjects,
  type LedgerEvent,
} from '@jobledger/core';
import {
  TableWriter,
  TrailMatcher,
  cell,
  decodeTrailMessage,
  entryFacts,
  isoMicros,
  jsonLine,
  mergeBySeq,
  registerAuditTrail,
  startTimeOf,
  summary,
  tableRow,
  timeArg,
  trailSubjects,
  type TrailEntry,
  type TrailFilter,
  type TrailMessage,
} from './audit-trail.js';

const J1 = '20261125181415937764';
const J2 = '20261125181500000001';
const R1 = '20261125181600000002';
const T0 = 1_795_000_000_000_000_000n; // 2026-11-18T…, nanoseconds
const stamp = '2026-11-25T18:14:15.937764';

const published = (jid: string, user: string, minions: string[]): LedgerEvent => ({
  type: 'job.published',
  tag: jobPublishedTag(jid),
  data: { jid, tgt: '*', tgt_type: 'glob', user, fun: 'cmd.run', arg: ['echo hi'], minions, missing: [], ret: '', _stamp: stamp },
});
const returned = (jid: string, id: string, user: string, retcode = 0): LedgerEvent => ({
  type: 'job.returned',
  tag: jobReturnedTag(jid, id),
  data: {
    cmd: '_return',
    id,
    jid,
    fun: 'cmd.run',
    fun_args: ['echo hi'],
    return: 'SECRET OUTPUT',
    retcode,
    success: retcode === 0,
    user,
    _stamp: stamp,
  },
});
const procEnded = (jid: string, id: string): LedgerEvent => ({
  type: 'proc.ended',
  tag: procTag(jid, id, 'ended'),
  data: { jid, id, fun: 'cmd.run', pid: 4242, outcome: 'signalled', signal: 9, _stamp: stamp },
});
const agentStarted = (id: string): LedgerEvent => ({
  type: 'agent.started',
  tag: 'minion_start',
  data: {
    id,
    cmd: '_minion_event',
    pretag: null,
    tag: 'minion_start',
    data: minionStartedText(id, new Date(0)),
    version: '0.1.0',
    _stamp: stamp,
  },
});
const runnerPublished = (jid: string, user: string): LedgerEvent => ({
  type: 'runner.published',
  tag: runnerPublishedTag(jid),
  data: { fun: 'runner.jobs.list_jobs', jid, user, fun_args: [], _stamp: stamp },
});

let seq = 0;
/** The n-th message of a history, stored n ms after T0. */
const msg = (subject: string, body: Uint8Array | string): TrailMessage => {
  seq++;
  return { seq, subject, data: typeof body === 'string' ? new TextEncoder().encode(body) : body, timeNanos: T0 + BigInt(seq) * 1_000_000n };
};

/** A small history: two jobs of two users, a runner job, an agent start and a broken message. */
function history(): TrailEntry[] {
  seq = 0;
  return [
    msg(subjects.agentStart('web1'), encodeEvent(agentStarted('web1'))),
    msg(subjects.jobNew(J1), encodeEvent(published(J1, 'alice', ['web1', 'web2']))),
    msg(subjects.jobRet(J1, 'web1'), encodeEvent(returned(J1, 'web1', 'alice'))),
    msg(subjects.jobNew(J2), encodeEvent(published(J2, 'bob', ['web2']))),
    msg(subjects.jobProc(J1, 'web2'), encodeEvent(procEnded(J1, 'web2'))),
    msg(subjects.jobRet(J2, 'web2'), '{not json'),
    msg(subjects.runNew(R1), encodeEvent(runnerPublished(R1, 'alice'))),
    msg(subjects.jobRet(J2, 'web2'), encodeEvent(returned(J2, 'web2', 'bob', 1))),
  ].map(decodeTrailMessage);
}

const keep = (filter: TrailFilter) => {
  const m = new TrailMatcher(filter);
  return history()
    .filter((e) => m.matches(e))
    .map((e) => e.seq);
};

describe('filters', () => {
  it('--jid reads only the subjects of that job and of a runner job of that jid', () => {
    expect(trailSubjects()).toEqual(['ledger.>']);
    expect(trailSubjects(J1)).toEqual([`ledger.job.${J1}.>`, `ledger.run.${J1}.>`]);
    expect(keep({ jid: J1 })).toEqual([2, 3, 5]);
    expect(keep({ jid: J2 })).toEqual([4, 6, 8]);
    expect(keep({ jid: R1 })).toEqual([7]);
  });

  it('--agent keeps its own events and the publications that expect it', () => {
    expect(keep({ agent: 'web1' })).toEqual([1, 2, 3]);
    expect(keep({ agent: 'web2' })).toEqual([2, 4, 5, 6, 8]);
    expect(keep({ agent: 'nobody' })).toEqual([]);
  });

  it('--user keeps the events carrying the user and the proc events of its jobs', () => {
    expect(keep({ user: 'alice' })).toEqual([2, 3, 5, 7]);
    // the broken message is on a return subject of bob's job
    expect(keep({ user: 'bob' })).toEqual([4, 6, 8]);
  });

  it('--since/--until bound the stream time, inclusive, to the microsecond', () => {
    const at = (i: number) => (T0 + BigInt(i) * 1_000_000n) / 1000n;
    expect(keep({ sinceMicros: at(3), untilMicros: at(5) })).toEqual([3, 4, 5]);
    expect(keep({ sinceMicros: at(3) + 1n })).toEqual([4, 5, 6, 7, 8]);
    expect(keep({ user: 'alice', sinceMicros: at(4) })).toEqual([7]);
  });

  it('--since accepts ISO times and jids, as UTC', () => {
    expect(timeArg('2026-11-25T18:14:15.937764')).toBe(jidToMicros(J1));
    expect(timeArg(J1)).toBe(jidToMicros(J1));
    expect(timeArg('2026-11-25T19:14:15.937764+01:00')).toBe(jidToMicros(J1));
    expect(() => timeArg('yesterday-ish')).toThrow(/Unknown string format/);
    expect(startTimeOf(jidToMicros(J1))).toBe('2026-11-25T18:14:15.937Z');
  });
});

describe('table', () => {
  it('prints aligned rows with the summary, never the return', () => {
    const lines: string[] = [];
    const t = new TableWriter((s) => lines.push(...s.split('\n').filter((l) => l !== '')));
    for (const e of history()) t.add(tableRow(e));
    t.flush();
    expect(lines).toHaveLength(9);
    expect(lines[0]).toMatch(/^SEQ {2}TIME {25}TYPE {14}JID {19}AGENT {2}USER {3}SUMMARY$/);
    // every column starts at the same place on every line (SEQ is right-aligned)
    const header = lines[0]!;
    for (const [i, e] of history().entries()) {
      const l = lines[i + 1]!;
      const row = tableRow(e);
      expect(l.indexOf(row[1]!)).toBe(header.indexOf('TIME'));
      expect(l.indexOf(row[2]!, header.indexOf('TYPE'))).toBe(header.indexOf('TYPE'));
      expect(l.indexOf(row[3]!, header.indexOf('JID'))).toBe(header.indexOf('JID'));
      expect(l.lastIndexOf(row[6]!)).toBe(header.indexOf('SUMMARY'));
      expect(l.indexOf(String(e.seq)) + String(e.seq).length).toBe(3);
    }
    expect(lines[2]).toContain('job.published');
    expect(lines[2]).toContain(`cmd.run ["echo hi"] on glob "*": 2 expected`);
    expect(lines[3]).toMatch(/job\.returned +20261125181415937764 +web1 +alice +cmd\.run ok retcode 0$/);
    expect(lines[5]).toContain('cmd.run pid 4242 signalled signal 9 (SIGKILL)');
    expect(lines[6]).toMatch(/INVALID +20261125181500000001 +web2 +- +not a JSON document/);
    expect(lines[8]).toContain('cmd.run FAILED retcode 1');
    expect(lines.join('\n')).not.toContain('SECRET OUTPUT');
  });

  it('widens columns for later pages only as needed', () => {
    const out: string[] = [];
    const t = new TableWriter((s) => out.push(s), 2);
    for (const e of history()) t.add(tableRow(e));
    t.flush();
    expect(out).toHaveLength(4);
    expect(
      out
        .join('')
        .split('\n')
        .filter((l) => l !== ''),
    ).toHaveLength(9);
  });

  it('escapes control characters of untrusted text, cuts long text, shows - for nothing', () => {
    expect(cell('a\nb\u001b[31m')).toBe('a\\nb\\u001b[31m');
    expect(cell('x\u0085y\u007f')).toBe('x\\u0085y\\u007f');
    expect(cell(undefined)).toBe('-');
    expect(cell('x'.repeat(100), 10)).toBe('xxxxxxxxx…');
  });

  it('times are UTC ISO with microseconds', () => {
    expect(isoMicros(1_764_094_455_937_764_123n)).toBe('2025-11-25T18:14:15.937764Z');
    expect(isoMicros(1_000n)).toBe('1970-01-01T00:00:00.000001Z');
  });

  it('summarises every event type', () => {
    const [start, pub, , , ended, bad, runner] = history();
    expect(summary(start!)).toBe('started version 0.1.0');
    expect(summary(pub!)).toBe('cmd.run ["echo hi"] on glob "*": 2 expected');
    expect(summary(ended!)).toBe('cmd.run pid 4242 signalled signal 9 (SIGKILL)');
    expect(summary(bad!)).toMatch(/^not a JSON document/);
    expect(summary(runner!)).toBe('runner.jobs.list_jobs');
  });
});

describe('JSON lines', () => {
  it('one object per event: seq, time, subject and the decoded event', () => {
    const [start] = history();
    expect(JSON.parse(jsonLine(start!))).toEqual({
      seq: 1,
      time: isoMicros(T0 + 1_000_000n),
      subject: 'ledger.agent.web1.start',
      event: (start as Extract<TrailEntry, { ok: true }>).event,
    });
  });

  it('a message that fails validation shows as such, with its error and body', () => {
    const bad = history()[5]!;
    expect(JSON.parse(jsonLine(bad))).toMatchObject({
      seq: 6,
      invalid: true,
      error: expect.stringMatching(/^not a JSON document/),
      raw: '{not json',
    });
    const binary = decodeTrailMessage(msg('ledger.job.x.new', new Uint8Array([0xff, 0x00])));
    expect(JSON.parse(jsonLine(binary))).toMatchObject({ invalid: true, raw_base64: '/wA=' });
  });
});

describe('subjects', () => {
  it('an event on a subject it does not belong to is invalid, as for the projector', () => {
    const on = (subject: string, ev: LedgerEvent) => decodeTrailMessage(msg(subject, encodeEvent(ev)));
    const wrongKind = on(subjects.jobNew(J1), returned(J1, 'web1', 'alice'));
    expect(wrongKind).toMatchObject({
      ok: false,
      error: 'event does not match its subject: a job.returned event on a job.new subject (expected job.ret)',
    });
    expect(on(subjects.jobRet(J2, 'web1'), returned(J1, 'web1', 'alice'))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/jid "\d+" in the event/),
    });
    expect(on(subjects.jobRet(J1, 'web2'), returned(J1, 'web1', 'alice'))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/agent id "web1" in the event, "web2"/),
    });
    expect(on('elsewhere.x', returned(J1, 'web1', 'alice'))).toMatchObject({
      ok: false,
      error: expect.stringMatching(/not a ledger event subject/),
    });
    expect(on(subjects.jobRet(J1, 'web1'), returned(J1, 'web1', 'alice')).ok).toBe(true);
    expect(entryFacts(wrongKind)).toEqual({ type: 'INVALID', jid: J1, agent: undefined });
  });
});

describe('mergeBySeq', () => {
  it('merges ordered sources into one ordered stream', async () => {
    async function* of(...seqs: number[]) {
      for (const s of seqs) yield { seq: s, subject: 's', data: new Uint8Array(), timeNanos: 0n };
    }
    const got: number[] = [];
    for await (const m of mergeBySeq([of(1, 4, 5), of(), of(2, 3, 9)])) got.push(m.seq);
    expect(got).toEqual([1, 2, 3, 4, 5, 9]);
  });
});

describe('the trail subcommand', () => {
  it('registers on a given group, refusing a bad jid or time', async () => {
    const audit = new Command('audit').exitOverride();
    const trail = registerAuditTrail(audit).exitOverride();
    trail.configureOutput({ writeErr: () => undefined });
    expect(audit.commands.map((c) => c.name())).toEqual(['trail']);
    await expect(audit.parseAsync(['trail', '--jid', 'ledger.>'], { from: 'user' })).rejects.toThrow(/not a jid/);
    await expect(audit.parseAsync(['trail', '--since', 'soonish'], { from: 'user' })).rejects.toThrow(/Unknown string format/);
    await expect(audit.parseAsync(['trail', '--out', 'yaml'], { from: 'user' })).rejects.toThrow(/Allowed choices are table, json/);
  });
});
