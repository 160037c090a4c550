import { describe, expect, it } from 'vitest';
import { fnmatchToRegExp } from '@jobledger/core';
import { html } from './html.js';
import { argsOf, exactGlob, safeNext } from './routes.js';

describe('the web UI', () => {
  it('escapes every interpolated value, in text and attributes, unless it is a fragment of its own', () => {
    const id = `<img src=x onerror="alert(1)">'`;
    expect(html`<td title="${id}">${id}</td>`.value).toBe(
      '<td title="&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&#39;">&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&#39;</td>',
    );
    expect(html`<p>${html`<b>${'&'}</b>`}${[1, '<']}${null}${false}</p>`.value).toBe('<p><b>&amp;</b>1&lt;</p>');
  });

  it('sends a key action for exactly the id on the row, even an id made of glob characters', () => {
    for (const id of ['*', 'web[1]', 'a?b', 'x,*']) {
      const re = fnmatchToRegExp(exactGlob(id));
      expect(re.test(id)).toBe(true);
      for (const other of ['web1', 'anything', 'a1b', 'x,y']) if (other !== id) expect(re.test(other)).toBe(false);
    }
  });

  it('goes after login only to a page of the UI, and reads a long next in linear time', () => {
    expect(safeNext('/ui/jobs/20261207131700123456?out=json')).toBe('/ui/jobs/20261207131700123456?out=json');
    for (const bad of ['https://evil.example/', '//evil.example/ui', '/ui/../x\\y', '/api', '/ui/\u00e9', undefined])
      expect(safeNext(bad)).toBe('/ui/jobs');
    const t0 = performance.now();
    expect(safeNext('/ui/' + '?'.repeat(300_000) + '\nX')).toBe('/ui/jobs');
    expect(safeNext('/ui/' + '/a'.repeat(1000) + '\u0000')).toBe('/ui/jobs');
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('reads the arguments field as the command line does, expanding no variable', () => {
    expect(argsOf(`'echo $HOME' timeout=10 web*`)).toEqual({ arg: ['echo $HOME', 'web*'], kwarg: { timeout: 10 } });
    expect(argsOf('$HOME')).toEqual({ arg: ['$HOME'], kwarg: {} });
  });
});
