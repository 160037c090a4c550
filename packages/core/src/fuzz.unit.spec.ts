// Property-based tests of the decoders at core's boundaries: whatever bytes arrive, each either
// parses or fails with its own error class, never another exception, a stack overflow or a hang.
// FUZZ_RUNS scales every property (the default keeps `npm test` quick).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePublisherAcl, AclConfigError, authorizePublish } from './auth/publisher-acl.js';
import { invalidAgentId } from './auth/key-texts.js';
import { decodeEvent, EventValidationError, encodeEvent, type LedgerEvent } from './events/index.js';
import { eventSubjectMismatch } from './event-subject.js';
import { excerpt, nestsDeeperThan, zodIssuesText } from './limits.js';
import { decodeAgentId, encodeAgentId, InvalidAgentIdError } from './subject-codec.js';
import { parseSubject } from './subjects.js';
import { matchTarget, resolveTarget, UnsupportedTargetError } from './targeting.js';
import { tgtType } from './events/common.js';

export const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
// A fixed seed by default, so a run can be repeated; FUZZ_SEED=<n> another, FUZZ_SEED=random a new one each run.
const SEED = process.env.FUZZ_SEED === 'random' ? undefined : Number(process.env.FUZZ_SEED ?? 20261206);
fc.configureGlobal(SEED === undefined ? {} : { seed: SEED });

const encoder = new TextEncoder();
const jid = '20261205203547123456';
const validEvents: LedgerEvent[] = [
  {
    type: 'job.published',
    tag: `salt/job/${jid}/new`,
    data: {
      jid,
      tgt_type: 'glob',
      tgt: '*',
      user: 'root',
      fun: 'test.ping',
      arg: [],
      minions: ['a'],
      missing: [],
      ret: '',
      _stamp: '2026-12-05T20:35:47.123456',
    },
  },
  {
    type: 'job.returned',
    tag: `salt/job/${jid}/ret/a`,
    data: {
      jid,
      id: 'a',
      fun: 'test.ping',
      fun_args: [],
      return: true,
      retcode: 0,
      success: true,
      cmd: '_return',
      _stamp: '2026-12-05T20:35:47.123456',
    },
  } as unknown as LedgerEvent,
];

/** The text of a JSON value nested `depth` levels deep (built as text: the value could not be serialised). */
const deepText = (depth: number): string => {
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    open += i % 2 === 0 ? '[' : '{"k":';
    close = (i % 2 === 0 ? ']' : '}') + close;
  }
  return `${open}1${close}`;
};

/** Any JSON text, including pathological nesting and very long strings. */
const hostileText = fc.oneof(
  { weight: 6, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null') },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 5000 }).map(deepText) },
  { weight: 1, arbitrary: fc.string({ minLength: 0, maxLength: 20_000 }).map((v) => JSON.stringify(v)) },
);

/** The text of a valid event with one field replaced by anything. */
const mutatedEvent = fc
  .tuple(
    fc.constantFrom(...validEvents),
    fc.constantFrom(
      'type',
      'tag',
      'data',
      'v',
      'data.jid',
      'data.id',
      'data.fun',
      'data.arg',
      'data.minions',
      'data._stamp',
      'data.return',
      'data.metadata',
    ),
    hostileText,
  )
  .map(([ev, field, text]) => {
    const copy = JSON.parse(JSON.stringify(ev)) as Record<string, Record<string, unknown>>;
    const [a, b] = field.split('.') as [string, string | undefined];
    if (b === undefined) (copy as Record<string, unknown>)[a] = '@HOLE@';
    else copy[a]![b] = '@HOLE@';
    return JSON.stringify(copy).replace('"@HOLE@"', () => text);
  });

function expectOnly<E extends Error>(fn: () => unknown, ...classes: Array<new (...a: never[]) => E>): void {
  try {
    fn();
  } catch (err) {
    if (!classes.some((c) => err instanceof c)) throw err;
    // an error message never echoes a large input
    expect((err as Error).message.length).toBeLessThan(4_000);
  }
}

describe('fuzz: event envelopes (decodeEvent)', () => {
  it('arbitrary bytes are an event or an EventValidationError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => expectOnly(() => decodeEvent(bytes), EventValidationError)),
      { numRuns: RUNS },
    );
  });
  it('arbitrary JSON, deep nesting included, is an event or an EventValidationError', () => {
    fc.assert(
      fc.property(hostileText, (t) => expectOnly(() => decodeEvent(encoder.encode(t)), EventValidationError)),
      { numRuns: RUNS },
    );
  });
  it('a valid event with one field replaced decodes to something that encodes again, or is refused', () => {
    fc.assert(
      fc.property(mutatedEvent, (ev) => {
        let decoded: LedgerEvent | undefined;
        expectOnly(() => (decoded = decodeEvent(encoder.encode(ev))), EventValidationError);
        if (decoded !== undefined) {
          // what the projector stores can be serialised again
          expect(() => encodeEvent(decoded!)).not.toThrow();
          const subject = parseSubject(`ledger.job.${jid}.new`)!;
          expect(() => eventSubjectMismatch(subject, decoded!)).not.toThrow();
        }
      }),
      { numRuns: RUNS },
    );
  });
  it('any subject parses or is not ours; never throws', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => void parseSubject(`ledger.${s}`)),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: agent ids', () => {
  it('an id is valid or rejected with a reason; a valid one survives the subject codec', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (id) => {
        const bad = invalidAgentId(id);
        if (bad !== undefined) return;
        expect(decodeAgentId(encodeAgentId(id))).toBe(id);
      }),
      { numRuns: RUNS },
    );
  });
  it('any token decodes to an id or is an InvalidAgentIdError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (t) => expectOnly(() => decodeAgentId(t), InvalidAgentIdError)),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: target expressions', () => {
  const ids = ['web1', 'web2', 'db1', 'a.b-c_d', 'Ünï'];
  it('any target of any type matches, does not match, or names what is unsupported', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.array(fc.string({ maxLength: 30 }), { maxLength: 10 }),
          fc.stringMatching(/^[GPEILSJRN]@[ -~]{0,30}( (and|or|not) [GPEILSJRN]@[ -~]{0,20}){0,4}$/),
        ),
        fc.constantFrom(...tgtType.options),
        (tgt, type) => {
          expectOnly(
            () => {
              for (const id of ids) expect(typeof matchTarget(id, tgt, type, { grains: { os: 'Debian', roles: ['web'] } })).toBe('boolean');
              resolveTarget(ids, tgt, type);
            },
            UnsupportedTargetError,
            SyntaxError,
          );
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: publisher_acl configuration', () => {
  it('any mapping is an ACL or an AclConfigError, and an ACL decides any publish', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('publisher_acl', 'publisher_acl_blacklist', 'sudo_acl', 'other'), fc.jsonValue()),
        fc.string({ maxLength: 40 }),
        fc.string({ maxLength: 40 }),
        (doc, user, fun) => {
          let acl;
          try {
            acl = parsePublisherAcl(doc);
          } catch (err) {
            if (err instanceof AclConfigError) return;
            throw err;
          }
          const d = authorizePublish(
            acl,
            { user, fun, arg: [], minions: ['web1'] },
            { privilegedUsers: new Set(['root']), compoundMinions: () => ['web1'] },
          );
          expect(typeof d.allowed).toBe('boolean');
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('limits', () => {
  it('measures depth without recursion, and excerpts stay short', () => {
    expect(nestsDeeperThan(JSON.parse(deepText(100_000)), 64)).toBe(true);
    expect(nestsDeeperThan(JSON.parse(deepText(64)), 64)).toBe(false);
    expect(nestsDeeperThan(JSON.parse(deepText(65)), 64)).toBe(true);
    expect(excerpt('x'.repeat(100_000))).toBe(`${'x'.repeat(80)}… (100000 characters)`);
    expect(zodIssuesText({ issues: [{ path: ['fun'], message: 'empty' }] })).toBe('fun: empty');
  });
});
