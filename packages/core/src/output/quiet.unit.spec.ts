import { expect, it } from 'vitest';
import { renderQuiet } from './quiet.js';

it('renderQuiet prints nothing', () => {
  expect(renderQuiet()).toBe('');
});
