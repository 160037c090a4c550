import { describe, expect, it } from 'vitest';
import { InvalidAgentIdError, decodeAgentId, encodeAgentId } from './subject-codec.js';
import { parseSubject, subjects } from './subjects.js';

const ids = [
  '192.168.153.141',
  'web1',
  'a.b.c',
  'd-e',
  'under_score',
  'star*',
  'gt>',
  'with space',
  'tab\tid',
  'ünïcödé.例え',
  '🦀',
  '_2E',
  '.',
  '_',
  '$SYS',
  'UPPER.lower',
];

describe('agent id subject codec', () => {
  it.each(ids)('round-trips %j through one valid subject token', (id) => {
    const token = encodeAgentId(id);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeAgentId(token)).toBe(id);
    expect(parseSubject(subjects.jobRet('20190724155612509222', id))).toEqual({
      kind: 'job.ret',
      jid: '20190724155612509222',
      agentId: id,
    });
  });

  it('keeps dotted ids readable', () => {
    expect(encodeAgentId('192.168.153.141')).toBe('192_2E168_2E153_2E141');
  });

  it('never maps two different ids to one token', () => {
    const generated = new Set<string>(ids);
    const alphabet = ['a', '.', '_', '2', 'E', '*', ' ', 'é', '-'];
    for (const x of alphabet) for (const y of alphabet) for (const z of alphabet) generated.add(x + y + z);
    const tokens = new Map<string, string>();
    for (const id of generated) {
      const t = encodeAgentId(id);
      expect(tokens.get(t) ?? id).toBe(id);
      tokens.set(t, id);
    }
    expect(tokens.size).toBe(generated.size);
  });

  it('rejects empty ids and malformed tokens', () => {
    expect(() => encodeAgentId('')).toThrow(InvalidAgentIdError);
    expect(() => decodeAgentId('a.b')).toThrow(InvalidAgentIdError);
    expect(() => decodeAgentId('_2')).toThrow(InvalidAgentIdError);
    expect(() => decodeAgentId('_FF')).toThrow();
  });

  it('parses the ledger subjects and nothing else', () => {
    expect(parseSubject('ledger.job.20190724155612509222.new')).toEqual({ kind: 'job.new', jid: '20190724155612509222' });
    expect(parseSubject(subjects.agentStart('a.b'))).toEqual({ kind: 'agent.start', agentId: 'a.b' });
    expect(parseSubject(subjects.jobProc('1', 'x y'))).toEqual({ kind: 'job.proc', jid: '1', agentId: 'x y' });
    expect(parseSubject('other.job.1.new')).toBeUndefined();
    expect(parseSubject('ledger.job.1.ret.bad.token')).toBeUndefined();
  });
});
