import { describe, expect, it } from 'vitest';
import { bindWheelArgs } from './wheel.js';

describe('wheel arguments', () => {
  const accept = { params: ['match', 'include_rejected', 'include_denied'], run: () => undefined };

  it('binds positional and keyword arguments by name', () => {
    expect(bindWheelArgs(accept, { arg: ['web*'], kwarg: { include_denied: true } })).toEqual({ match: 'web*', include_denied: true });
  });

  it('refuses a keyword that gives a positional parameter a second value (the ACL checked the first)', () => {
    expect(() => bindWheelArgs(accept, { arg: ['web1'], kwarg: { match: '*' } })).toThrow(/multiple values for argument 'match'/);
  });

  it('refuses unknown keywords and too many positional arguments', () => {
    expect(() => bindWheelArgs(accept, { arg: [], kwarg: { glob: '*' } })).toThrow(/unexpected keyword argument 'glob'/);
    expect(() => bindWheelArgs(accept, { arg: [1, 2, 3, 4], kwarg: {} })).toThrow(/at most 3/);
  });
});
