import { describe, expect, it } from 'vitest';
import { forEachLimit, Limiter } from './limiter.js';

describe('Limiter', () => {
  it('admits at most max holders and serves waiters in order', async () => {
    const l = new Limiter(2);
    const r1 = await l.acquire();
    const r2 = await l.acquire();
    const order: number[] = [];
    const w3 = l.acquire().then((r) => (order.push(3), r));
    const w4 = l.acquire().then((r) => (order.push(4), r));
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual([]);
    r1();
    r1(); // idempotent
    const r3 = await w3;
    expect(order).toEqual([3]);
    expect(l.size).toBe(2);
    r2();
    (await w4)();
    r3();
    expect(l.size).toBe(0);
  });

  it('gives up waiting when its signal aborts', async () => {
    const l = new Limiter(1);
    const r = await l.acquire();
    const ac = new AbortController();
    const w = l.acquire(ac.signal);
    ac.abort(new Error('stop'));
    await expect(w).rejects.toThrow('stop');
    r();
    expect(l.size).toBe(0);
  });
});

describe('forEachLimit', () => {
  it('runs every item with bounded concurrency', async () => {
    let active = 0;
    let peak = 0;
    const seen: number[] = [];
    await forEachLimit([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 5));
      seen.push(n);
      active--;
    });
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(peak).toBe(3);
  });
});
