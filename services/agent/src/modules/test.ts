import { setTimeout as delay } from 'node:timers/promises';
import { AGENT_VERSION } from '../version.js';
import type { ExecModule } from './types.js';

/** Python's `int(x)` for the values a publication can carry. */
function pyInt(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value)) return Number.parseInt(value, 10);
  throw new Error(`ValueError: invalid literal for int() with base 10: ${JSON.stringify(value)}`);
}

/** Salt's `test` module. */
export const test: ExecModule = {
  ping: {
    kind: 'inproc',
    signature: { name: 'ping', params: [] },
    doc: 'Used to make sure the minion is up and responding. Not an ICMP ping. Returns True.',
    run: async () => ({ return: true }),
  },
  echo: {
    kind: 'inproc',
    signature: { name: 'echo', params: ['text'] },
    doc: 'Return a string - used for testing the connection.',
    run: async ({ named }) => ({ return: named.text }),
  },
  sleep: {
    kind: 'inproc',
    signature: { name: 'sleep', params: ['length'] },
    doc: 'Instruct the minion to initiate a process that will sleep for a given period of time.',
    run: async ({ named }, ctx) => {
      const seconds = pyInt(named.length);
      await delay(Math.max(0, seconds) * 1000, undefined, { signal: ctx.signal });
      return { return: true };
    },
  },
  arg: {
    kind: 'inproc',
    signature: { name: 'arg', params: [], varargs: true, varkw: true },
    doc: 'Print out the data passed into the function ``*args`` and ``kwargs``.',
    run: async ({ rest, kwargs }) => ({
      return: { args: rest, kwargs: Object.fromEntries(Object.entries(kwargs).filter(([k]) => !k.startsWith('__'))) },
    }),
  },
  version: {
    kind: 'inproc',
    signature: { name: 'version', params: [] },
    doc: 'Return the version of the agent.',
    run: async () => ({ return: AGENT_VERSION }),
  },
  retcode: {
    kind: 'inproc',
    signature: { name: 'retcode', params: [{ name: 'code', default: 42 }] },
    doc: 'Test that the returncode system is functioning correctly.',
    run: async ({ named }) => ({ return: true, retcode: pyInt(named.code) }),
  },
  exception: {
    kind: 'inproc',
    signature: { name: 'exception', params: [{ name: 'message', default: 'Test Exception' }] },
    doc: 'Raise an exception.',
    run: async ({ named }) => {
      throw new Error(String(named.message));
    },
  },
};
