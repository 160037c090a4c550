// Property-based tests of the keyserver's request body: any JSON is a valid request or a list of
// problems (what the 400 reply carries), and a valid-looking request with a forged signature is
// refused by the signature check, never by an exception.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createUser } from '@nats-io/nkeys';
import { zodIssuesText } from '@jobledger/core';
import { verifyAuthRequest } from '@jobledger/runtime/pki';
import { authRequestBody } from './keyserver.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
// A fixed seed by default, so a run can be repeated; FUZZ_SEED=<n> another, FUZZ_SEED=random a new one each run.
const SEED = process.env.FUZZ_SEED === 'random' ? undefined : Number(process.env.FUZZ_SEED ?? 20261206);
fc.configureGlobal(SEED === undefined ? {} : { seed: SEED });
const publicKey = createUser().getPublicKey();

describe('fuzz: keyserver /v1/auth body', () => {
  it('any JSON parses or gives a short list of problems', () => {
    const body = fc.oneof(
      fc.jsonValue(),
      fc.record({
        ids: fc.oneof(fc.array(fc.string({ unit: 'binary', maxLength: 300 }), { maxLength: 20 }), fc.jsonValue()),
        publicKey: fc.oneof(fc.constant(publicKey), fc.string({ maxLength: 80 })),
        ts: fc.oneof(fc.integer(), fc.double(), fc.jsonValue()),
        sig: fc.oneof(fc.base64String({ maxLength: 120 }), fc.string({ maxLength: 300 })),
        wait: fc.option(fc.oneof(fc.double(), fc.integer({ min: -5, max: 100 }))),
      }),
    );
    fc.assert(
      fc.property(body, (b) => {
        const parsed = authRequestBody.safeParse(b);
        if (!parsed.success) {
          expect(zodIssuesText(parsed.error).length).toBeLessThan(2_000);
          return;
        }
        // parses, but nobody signed it: refused with a reason, no exception
        expect(verifyAuthRequest(parsed.data)).toBeTypeOf('string');
      }),
      { numRuns: RUNS },
    );
  });
});
