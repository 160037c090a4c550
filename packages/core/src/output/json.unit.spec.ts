import { describe, expect, it } from 'vitest';
import { renderJson } from './json.js';

const data = { m1: { b: { c: 'x"\n' }, a: [1, 'é', null, {}, []] } };

describe('renderJson', () => {
  it('prints one 4-space document per minion return, as `salt --out json` does', () => {
    const out = [{ '192.168.153.142': true }, { '192.168.153.141': true }].map((ret) => renderJson(ret)).join('\n');
    expect(out).toBe('{\n    "192.168.153.142": true\n}\n{\n    "192.168.153.141": true\n}');
  });

  it('keeps key order and non-ASCII, with Python separators', () => {
    expect(renderJson(data, 2)).toBe(
      [
        '{',
        '  "m1": {',
        '    "b": {',
        '      "c": "x\\"\\n"',
        '    },',
        '    "a": [',
        '      1,',
        '      "é",',
        '      null,',
        '      {},',
        '      []',
        '    ]',
        '  }',
        '}',
      ].join('\n'),
    );
  });

  it('puts a negative indent on one line and indent 0 on unindented lines', () => {
    expect(renderJson(data, -1)).toBe('{"m1": {"b": {"c": "x\\"\\n"}, "a": [1, "é", null, {}, []]}}');
    expect(renderJson({ m1: [1, 2] }, 0)).toBe('{\n"m1": [\n1,\n2\n]\n}');
  });

  it('writes numbers as Python does', () => {
    expect(renderJson({ a: [1.5, 1e-5, NaN, -Infinity] }, -1)).toBe('{"a": [1.5, 1e-05, NaN, -Infinity]}');
  });
});
