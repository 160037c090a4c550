import { describe, expect, it } from 'vitest';
import { nodeFlags, ServiceStartError } from './services.js';

describe('nodeFlags', () => {
  it('gives agent processes a bounded heap, other services none', () => {
    expect(nodeFlags('agent', {})).toEqual(['--max-semi-space-size=8', '--max-old-space-size=512']);
    expect(nodeFlags('agent', { JOBLEDGER_AGENT_HEAP_MB: '2048' })).toEqual(['--max-semi-space-size=8', '--max-old-space-size=2048']);
    expect(nodeFlags('projector', { JOBLEDGER_AGENT_HEAP_MB: '2048' })).toEqual([]);
  });

  it('refuses a heap limit that is not a whole number of at least 64 MB', () => {
    for (const bad of ['32', '1.5', 'lots']) {
      expect(() => nodeFlags('agent', { JOBLEDGER_AGENT_HEAP_MB: bad })).toThrow(ServiceStartError);
    }
    expect(() => nodeFlags('agent', { JOBLEDGER_AGENT_HEAP_MB: '32' })).toThrow(
      "JOBLEDGER_AGENT_HEAP_MB must be a whole number of megabytes, at least 64, got '32'",
    );
  });
});
