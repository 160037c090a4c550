// Property-based tests of what the CLI reads from its user: function arguments and `key=value`
// words (read as YAML, as Salt does), `--metadata` / `--return_kwargs`, and configuration files.

import fc from 'fast-check';
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { InputLimitError } from '@jobledger/core';
import { ConfigError, parseConfigMapping } from '@jobledger/runtime';
import { metadataArg, returnKwargsArg } from './commands/run.js';
import { parseFunctionArgs } from '@jobledger/runtime/salt-args';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
// A fixed seed by default, so a run can be repeated; FUZZ_SEED=<n> another, FUZZ_SEED=random a new one each run.
const SEED = process.env.FUZZ_SEED === 'random' ? undefined : Number(process.env.FUZZ_SEED ?? 20261206);
fc.configureGlobal(SEED === undefined ? {} : { seed: SEED });

const deepFlow = (d: number) => '['.repeat(d) + ']'.repeat(d);
const aliasBomb =
  'a: &a [x,x,x,x,x,x,x,x,x]\n' +
  Array.from({ length: 9 }, (_, i) => {
    const p = String.fromCharCode(97 + i);
    const n = String.fromCharCode(98 + i);
    return `${n}: &${n} [*${p},*${p},*${p},*${p},*${p},*${p},*${p},*${p},*${p}]`;
  }).join('\n');
/** Words as a shell hands them over: anything, YAML-ish, key=value, deep, aliased. */
const word = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 2, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v) ?? '') },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.stringMatching(/^[a-z_][a-z0-9_.-]{0,10}$/), fc.string({ maxLength: 60 })).map(([k, v]) => `${k}=${v}`),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3000 }).map(deepFlow) },
  { weight: 1, arbitrary: fc.constant(aliasBomb) },
  { weight: 1, arbitrary: fc.stringMatching(/^[-?:!&*|>%@`'"{}[\],#\s\w]{0,40}$/) },
);

function onlyLimit(fn: () => unknown, ...ok: Array<new (...a: never[]) => Error>): void {
  try {
    fn();
  } catch (err) {
    if (!ok.some((c) => err instanceof c)) throw err;
    expect((err as Error).message.length).toBeLessThan(500);
  }
}

describe('fuzz: CLI arguments (parseFunctionArgs)', () => {
  it('any words are positional and keyword arguments that serialise, or a limit error', () => {
    fc.assert(
      fc.property(fc.array(word, { maxLength: 8 }), (words) =>
        onlyLimit(() => {
          const { arg, kwarg } = parseFunctionArgs(words);
          expect(JSON.parse(JSON.stringify({ arg, kwarg }))).toBeTypeOf('object');
        }, InputLimitError),
      ),
      { numRuns: RUNS },
    );
  });
  it('--metadata and --return_kwargs take a mapping or say why not', () => {
    fc.assert(
      fc.property(word, (w) => {
        onlyLimit(() => metadataArg(w), InvalidArgumentError);
        onlyLimit(() => returnKwargsArg(w), InvalidArgumentError);
      }),
      { numRuns: RUNS },
    );
  });
  it('says a deep or aliased argument is too deep, not "not a mapping"', () => {
    expect(() => metadataArg(deepFlow(1000))).toThrow(/nested too deeply to read|nested more than 64 levels deep/);
    expect(() => metadataArg(`{a: ${deepFlow(100)}}`)).toThrow(/nested more than 64 levels deep/);
    expect(() => parseFunctionArgs([aliasBomb])).toThrow(/YAML aliases/);
  });
});

describe('fuzz: configuration files (parseConfigMapping)', () => {
  it('any text is a mapping or a ConfigError naming the file', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          word,
          fc.array(word, { maxLength: 6 }).map((ws) => ws.map((w, i) => `k${i}: ${w}`).join('\n')),
        ),
        (text) => {
          try {
            parseConfigMapping(text, '/home/x/minion.yaml');
          } catch (err) {
            if (!(err instanceof ConfigError)) throw err;
            expect(err.message).toContain('/home/x/minion.yaml');
            expect(err.message.length).toBeLessThan(1_000);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});
