// Given a long rebuild, when its progress is shown off a terminal, then a plain line goes out
// every 10 s and nothing for a run shorter than that; on a terminal the line is rewritten in
// place. An error that ends a command is one line, prefixed with the command.

import { describe, expect, it } from 'vitest';
import { commandError, progressLine } from './ledger-stream.js';

function clocked(tty: boolean) {
  let t = 1_000_000;
  const out: string[] = [];
  const p = progressLine({ stderr: (s) => out.push(s) }, tty, { now: () => t });
  return { p, out, tick: (ms: number) => (t += ms) };
}

describe('progressLine', () => {
  it('off a terminal: nothing before 10 s, then one plain line per 10 s', () => {
    const { p, out, tick } = clocked(false);
    for (let i = 0; i < 39; i++) {
      p.show(`at ${i}`);
      tick(250);
    }
    expect(out).toEqual([]); // 9.75 s
    tick(250);
    p.show('at 10 s');
    tick(5_000);
    p.show('at 15 s');
    tick(5_000);
    p.show('at 20 s');
    p.done();
    expect(out).toEqual(['at 10 s\n', 'at 20 s\n']);
  });

  it('on a terminal: rewritten in place at once, cleared by done', () => {
    const { p, out } = clocked(true);
    p.show('a');
    p.show('b');
    p.done();
    p.done();
    expect(out).toEqual(['\r\x1b[2Ka', '\r\x1b[2Kb', '\r\x1b[2K']);
  });
});

describe('commandError', () => {
  it('one line with the command, whatever the message holds', () => {
    expect(commandError('replay', new Error('first\n  second'))).toBe('jobledger replay: first second\n');
    expect(commandError('audit verify', 'plain')).toBe('jobledger audit verify: plain\n');
  });

  it('a pg error goes through the runtime first: a missing table names the database and `db migrate`', () => {
    const err = Object.assign(new Error('relation "projector_checkpoint" does not exist'), { code: '42P01' });
    expect(commandError('audit verify', err, 'postgres://u@127.0.0.1:5432/jobs')).toMatch(
      /^jobledger audit verify: the jobledger tables are missing in database "jobs" at 127\.0\.0\.1:5432: run `npx jobledger db migrate`/,
    );
  });
});
