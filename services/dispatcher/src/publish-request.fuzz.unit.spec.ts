// Property-based tests of what enters the dispatcher: publish request bodies and master.yaml.
// Every input is a job or a PublishValidationError whose text stays short; never a crash.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Limits } from '@jobledger/core';
import { errorReply } from './dispatcher.js';
import { PublishValidationError } from './errors.js';
import { MasterConfigError, parseMasterConfig } from './master-config.js';
import { parsePublishRequest } from './publish-request.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
// A fixed seed by default, so a run can be repeated; FUZZ_SEED=<n> another, FUZZ_SEED=random a new one each run.
const SEED = process.env.FUZZ_SEED === 'random' ? undefined : Number(process.env.FUZZ_SEED ?? 20261206);
fc.configureGlobal(SEED === undefined ? {} : { seed: SEED });

const deepText = (depth: number): string => '['.repeat(depth) + '1' + ']'.repeat(depth);
const anyText = fc.oneof(
  { weight: 5, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null') },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 5000 }).map(deepText) },
  { weight: 1, arbitrary: fc.string({ maxLength: 100_000 }).map((s) => JSON.stringify(s)) },
);
const field = fc.constantFrom(
  'tgt',
  'tgt_type',
  'fun',
  'arg',
  'kwarg',
  'user',
  'ret',
  'ret_config',
  'ret_kwargs',
  'timeout',
  'metadata',
  'delimiter',
  'extra',
);
const base = { tgt: 'web*', fun: 'test.ping' };

/** A request with some fields set to anything (as JSON text). */
const request = fc.array(fc.tuple(field, anyText), { maxLength: 4 }).map((pairs) => {
  const o: Record<string, unknown> = { ...base };
  pairs.forEach(([k], i) => (o[k] = `@HOLE${i}@`));
  let text = JSON.stringify(o);
  pairs.forEach(([, v], i) => (text = text.replace(`"@HOLE${i}@"`, () => v)));
  return text;
});
/** Targets of every shape, long ones included. */
const target = fc.record({
  tgt: fc.oneof(
    { weight: 6, arbitrary: fc.string({ maxLength: 300 }) },
    { weight: 1, arbitrary: fc.string({ minLength: 60_000, maxLength: 120_000 }) },
    { weight: 3, arbitrary: fc.array(fc.string({ maxLength: 40 }), { maxLength: 50 }) },
  ),
  tgt_type: fc.constantFrom('glob', 'pcre', 'list', 'grain', 'grain_pcre', 'pillar', 'ipcidr', 'compound', 'nodegroup', 'range', 'bogus'),
  fun: fc.oneof(fc.constant('test.ping'), fc.string({ maxLength: 400 })),
});

function decide(body: string | Uint8Array): void {
  try {
    const job = parsePublishRequest(body, { nodegroups: { web: 'web*', loop: 'N@loop' } });
    expect(job.fun.length).toBeGreaterThan(0);
  } catch (err) {
    if (!(err instanceof PublishValidationError)) throw err;
    expect(err.message.length).toBeLessThan(2_000);
    expect(errorReply(err).error.message.length).toBeLessThanOrEqual(1_100);
  }
}

describe('fuzz: publish requests (parsePublishRequest)', () => {
  it('arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (b) => decide(b)),
      { numRuns: RUNS },
    );
  });
  it('valid requests with fields replaced by anything, deep nesting and long strings included', () => {
    fc.assert(
      fc.property(request, (t) => decide(t)),
      { numRuns: RUNS },
    );
  });
  it('targets of every type and size', () => {
    fc.assert(
      fc.property(target, (r) => decide(JSON.stringify(r))),
      { numRuns: RUNS },
    );
  });
  it('names the limits it enforces', () => {
    expect(() => parsePublishRequest(JSON.stringify({ tgt: '*', fun: '' }))).toThrow(
      'fun: no function given (name one, such as test.ping)',
    );
    expect(() => parsePublishRequest(JSON.stringify({ tgt: 'x'.repeat(100_000), fun: 'test.ping' }))).toThrow(
      `tgt: the target is longer than ${Limits.targetChars} characters`,
    );
    expect(() => parsePublishRequest(`{"tgt":"*","fun":"test.arg","metadata":{"a":${deepText(10_000)}}}`)).toThrow(
      `metadata: nested more than ${Limits.depth} levels deep`,
    );
    expect(() => parsePublishRequest(`{"tgt":"*","fun":"test.arg","arg":[${deepText(1_000)}]}`)).toThrow(/^arg: nested more than/);
  });
});

describe('fuzz: master.yaml (parseMasterConfig)', () => {
  const yamlish = fc.oneof(
    fc.string({ maxLength: 500 }),
    fc.jsonValue().map((v) => JSON.stringify(v) ?? ''),
    fc.integer({ min: 1, max: 3000 }).map((d) => `nodegroups:\n  g: ${deepText(d)}\n`),
    fc.integer({ min: 1, max: 2000 }).map((d) => Array.from({ length: d }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n')),
    fc.constant(
      'a: &a [x, x, x, x, x, x, x, x, x]\n' +
        Array.from(
          { length: 8 },
          (_, i) =>
            `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`,
        ).join('\n'),
    ),
    fc
      .tuple(fc.constantFrom('publisher_acl', 'publisher_acl_blacklist', 'sudo_acl', 'nodegroups'), fc.jsonValue())
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}`),
  );
  it('any text is a configuration or a MasterConfigError naming the file', () => {
    fc.assert(
      fc.property(yamlish, (text) => {
        try {
          parseMasterConfig(text, '/etc/jobledger/master.yaml');
        } catch (err) {
          if (!(err instanceof MasterConfigError)) throw err;
          expect(err.message).toContain('/etc/jobledger/master.yaml');
          expect(err.message.length).toBeLessThan(4_000);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
