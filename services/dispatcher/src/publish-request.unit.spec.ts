import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '@jobledger/core';
import { PublishValidationError } from './errors.js';
import { mergeKwargs, normaliseTarget, parsePublishRequest, publishReply, publishRequest } from './publish-request.js';

const parse = (req: unknown) => parsePublishRequest(JSON.stringify(req));

function validationMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PublishValidationError);
    expect((err as PublishValidationError).code).toBe(ErrorCodes.Validation);
    expect((err as PublishValidationError).retryable).toBe(false);
    return (err as Error).message;
  }
  throw new Error('expected a validation error');
}

describe('publish request', () => {
  it('fills in Salt defaults', () => {
    expect(parse({ tgt: '*', fun: 'test.ping' })).toEqual({
      tgt: '*',
      tgt_type: 'glob',
      fun: 'test.ping',
      arg: [],
      user: 'root',
      ret: '',
    });
  });

  it('keeps timeout and metadata when given', () => {
    const job = parse({
      tgt: 'web*',
      tgt_type: 'pcre',
      fun: 'cmd.run',
      arg: ['ls'],
      user: 'sudo_alice',
      ret: 'pgjsonb',
      timeout: 7.5,
      metadata: { a: 1 },
    });
    expect(job).toMatchObject({ tgt_type: 'pcre', user: 'sudo_alice', ret: 'pgjsonb', timeout: 7.5, metadata: { a: 1 } });
  });

  it('keeps --return_config and --return_kwargs as Salt publishes them (ret_config, ret_kwargs)', () => {
    const job = parse({ tgt: '*', fun: 'test.ping', ret: 'rawfile_json', ret_config: 'alternative', ret_kwargs: { filename: '/tmp/x' } });
    expect(job).toMatchObject({ ret: 'rawfile_json', ret_config: 'alternative', ret_kwargs: { filename: '/tmp/x' } });
    expect(parse({ tgt: '*', fun: 'test.ping' })).not.toHaveProperty('ret_config');
    expect(parse({ tgt: '*', fun: 'test.ping' })).not.toHaveProperty('ret_kwargs');
    expect(validationMessage(() => parse({ tgt: '*', fun: 'test.ping', ret_kwargs: 'filename=/x' }))).toMatch(/ret_kwargs/);
    expect(validationMessage(() => parse({ tgt: '*', fun: 'test.ping', ret_config: '' }))).toMatch(/ret_config/);
  });

  it('rejects what is not JSON, unknown keys and wrong types with zod’s message', () => {
    expect(validationMessage(() => parsePublishRequest(new TextEncoder().encode('{nope')))).toMatch(/^request is not a JSON document/);
    expect(validationMessage(() => parse({ tgt: '*' }))).toMatch(/fun/);
    expect(validationMessage(() => parse({ tgt: '*', fun: 'test.ping', kwargs: {} }))).toMatch(/kwargs/);
    expect(validationMessage(() => parse({ tgt: '*', fun: 'test.ping', arg: 'x' }))).toMatch(/arg/);
    expect(validationMessage(() => parse({ tgt: '*', fun: 'test.ping', timeout: 0 }))).toMatch(/timeout/);
    expect(validationMessage(() => parse({ tgt: '*', fun: 'test.ping', tgt_type: 'bogus' }))).toMatch(/tgt_type/);
  });

  it('says so for a target type Salt knows but jobledger does not match yet', () => {
    expect(validationMessage(() => parse({ tgt: 'role:web', tgt_type: 'pillar', fun: 'test.ping' }))).toBe(
      "target type 'pillar' is not supported yet",
    );
    expect(validationMessage(() => parse({ tgt: 'web* and I@role:web', tgt_type: 'compound', fun: 'test.ping' }))).toBe(
      "target type 'pillar' is not supported yet",
    );
  });

  it('keeps a grain delimiter other than `:`', () => {
    expect(parse({ tgt: 'os|Debian', tgt_type: 'grain', delimiter: '|', fun: 'test.ping' })).toMatchObject({ delimiter: '|' });
    expect(parse({ tgt: 'os:Debian', tgt_type: 'grain', delimiter: ':', fun: 'test.ping' })).not.toHaveProperty('delimiter');
  });

  it('refuses an empty target like Salt’s CLI', () => {
    const text = 'Cannot execute command without defining a target.';
    expect(validationMessage(() => parse({ tgt: '', fun: 'test.ping' }))).toBe(text);
    expect(validationMessage(() => parse({ tgt: ' , ', tgt_type: 'list', fun: 'test.ping' }))).toBe(text);
    expect(validationMessage(() => parse({ tgt: [], tgt_type: 'list', fun: 'test.ping' }))).toBe(text);
  });

  it('refuses an array target for a pattern type', () => {
    expect(validationMessage(() => parse({ tgt: ['a', 'b'], fun: 'test.ping' }))).toBe("tgt must be a string for tgt_type 'glob'");
  });
});

describe('list targets are split like Salt', () => {
  it('a comma string becomes an array, spaces removed', () => {
    expect(normaliseTarget('192.168.153.141, ghost', 'list')).toEqual(['192.168.153.141', 'ghost']);
    expect(parse({ tgt: 'a,b,,c', tgt_type: 'list', fun: 'test.ping' }).tgt).toEqual(['a', 'b', 'c']);
  });
  it('a whitespace string too', () => {
    expect(normaliseTarget('a  b', 'list')).toEqual(['a', 'b']);
  });
  it('an array stays (empties dropped)', () => {
    expect(normaliseTarget(['a', '', 'b'], 'list')).toEqual(['a', 'b']);
  });
  it('glob and pcre targets are left as they are', () => {
    expect(normaliseTarget('web,db', 'glob')).toBe('web,db');
    expect(normaliseTarget('^web', 'pcre')).toBe('^web');
  });
});

describe('nodegroups are expanded as Salt’s client does', () => {
  const ctx = {
    nodegroups: { webs: 'web*', ids: ['db1', 'db2'], both: 'N@webs or N@ids', loop: 'N@loop2', loop2: 'N@loop' },
    masterConfigFile: '/home/x/.jobledger/master.yaml',
  };
  const nodegroup = (tgt: string) => parsePublishRequest(JSON.stringify({ tgt, tgt_type: 'nodegroup', fun: 'test.ping' }), ctx);

  it('-N group becomes a compound target of the group’s words', () => {
    expect(nodegroup('webs')).toMatchObject({ tgt: ['web*'], tgt_type: 'compound' });
    expect(nodegroup('ids')).toMatchObject({ tgt: ['L@db1,db2'], tgt_type: 'compound' });
    expect(nodegroup('both')).toMatchObject({ tgt: ['(', '(', 'web*', ')', 'or', 'L@db1,db2', ')'], tgt_type: 'compound' });
    expect(nodegroup('loop')).toMatchObject({ tgt: [], tgt_type: 'compound' });
  });

  it('an unknown group names the configuration file', () => {
    expect(validationMessage(() => nodegroup('nope'))).toBe('Node group nope unavailable in /home/x/.jobledger/master.yaml');
    expect(validationMessage(() => parse({ tgt: 'nope', tgt_type: 'nodegroup', fun: 'test.ping' }))).toBe(
      'Node group nope unavailable in the master config file',
    );
  });

  it('an unknown group with a long name is named by an excerpt, not echoed whole', () => {
    const message = validationMessage(() => nodegroup('x|({&'.repeat(12_000)));
    expect(message).toMatch(/^Node group x\|\(\{&.* unavailable in \/home\/x\/\.jobledger\/master\.yaml$/);
    expect(message.length).toBeLessThan(400);
  });

  it('N@ inside a compound target is expanded in place', () => {
    const job = parsePublishRequest(JSON.stringify({ tgt: 'N@ids and not db2', tgt_type: 'compound', fun: 'test.ping' }), ctx);
    expect(job).toMatchObject({ tgt: 'L@db1,db2 and not db2', tgt_type: 'compound' });
  });
});

describe('kwarg merging (Salt publish arg form)', () => {
  it('no kwarg: the positional args only', () => {
    expect(mergeKwargs(['a', 1], {})).toEqual(['a', 1]);
    expect(parse({ tgt: '*', fun: 'test.arg', arg: ['a'] }).arg).toEqual(['a']);
  });
  it('kwarg: one mapping marked __kwarg__ appended after the positional args', () => {
    expect(parse({ tgt: '*', fun: 'test.arg', arg: ['a', 2], kwarg: { x: 1, y: [true] } }).arg).toEqual([
      'a',
      2,
      { x: 1, y: [true], __kwarg__: true },
    ]);
  });
  it('kwarg alone', () => {
    expect(mergeKwargs([], { name: 'vim' })).toEqual([{ name: 'vim', __kwarg__: true }]);
  });
  it('__kwarg__ is always true, and the inputs are not mutated', () => {
    const arg = ['a'];
    const kwarg = { __kwarg__: false, k: 'v' };
    expect(mergeKwargs(arg, kwarg)).toEqual(['a', { k: 'v', __kwarg__: true }]);
    expect(arg).toEqual(['a']);
    expect(kwarg).toEqual({ __kwarg__: false, k: 'v' });
  });
});

describe('reply schema', () => {
  it('accepts a success and an error, nothing else', () => {
    expect(publishReply.safeParse({ jid: '20261125185512123456', minions: ['a'], missing: [], seq: 3 }).success).toBe(true);
    expect(publishReply.safeParse({ error: { code: 'NO_MINIONS', message: 'x' } }).success).toBe(true);
    expect(publishReply.safeParse({ jid: '123', minions: [], missing: [], seq: 1 }).success).toBe(false);
    expect(publishReply.safeParse({ error: { code: 'OOPS', message: 'x' } }).success).toBe(false);
  });
  it('request input type accepts the minimal form', () => {
    expect(publishRequest.parse({ tgt: '*', fun: 'test.ping' }).kwarg).toEqual({});
  });
});
