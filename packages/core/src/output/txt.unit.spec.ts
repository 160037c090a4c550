import { describe, expect, it } from 'vitest';
import { renderTxt } from './txt.js';

describe('renderTxt', () => {
  it('prints `key: line` for each line of a string value', () => {
    expect(renderTxt({ m1: 'hi\nthere\n' })).toBe('m1: hi\nm1: there');
    expect(renderTxt({ m1: '' })).toBe('');
  });

  it('prints Python str() of other values', () => {
    expect(renderTxt({ m1: true })).toBe('m1: True');
    expect(renderTxt({ m1: { a: [1, 'x', null] } })).toBe("m1: {'a': [1, 'x', None]}");
  });

  it('prints non-mappings whole', () => {
    expect(renderTxt('plain\n')).toBe('plain');
    expect(renderTxt([1, 'a'])).toBe("[1, 'a']");
  });
});
