import { describe, expect, it } from 'vitest';
import { refusePgjsonbOnOwnDatabase } from './own-database-guard.js';

const OWN = 'postgres://postgres@127.0.0.1:5433/jobledger';
const feeds = [{ role: 'master_job_cache', name: 'pgjsonb' }];

describe('refusePgjsonbOnOwnDatabase', () => {
  it("refuses pgjsonb aimed at jobledger's own database, loopback names counted as one host", () => {
    const mapping = { 'returner.pgjsonb.host': 'localhost', 'returner.pgjsonb.port': 5433, 'returner.pgjsonb.db': 'jobledger' };
    expect(() => refusePgjsonbOnOwnDatabase(feeds, mapping, '/h/master.yaml', OWN)).toThrow(
      "master_job_cache: pgjsonb points at jobledger's own database (jobledger at 127.0.0.1:5433)",
    );
    expect(() =>
      refusePgjsonbOnOwnDatabase(
        [{ role: 'event_return', name: 'pgjsonb' }],
        { returner: { pgjsonb: { port: 5433, db: 'jobledger' } } },
        'f',
        OWN,
      ),
    ).toThrow(/event_return: pgjsonb/);
  });

  it('accepts another database, another port, another host, and other returners', () => {
    const base = { 'returner.pgjsonb.host': '127.0.0.1', 'returner.pgjsonb.port': 5433 };
    expect(() => refusePgjsonbOnOwnDatabase(feeds, { ...base, 'returner.pgjsonb.db': 'salt' }, 'f', OWN)).not.toThrow();
    expect(() =>
      refusePgjsonbOnOwnDatabase(feeds, { ...base, 'returner.pgjsonb.port': 5434, 'returner.pgjsonb.db': 'jobledger' }, 'f', OWN),
    ).not.toThrow();
    expect(() =>
      refusePgjsonbOnOwnDatabase(
        feeds,
        { 'returner.pgjsonb.host': 'db2', 'returner.pgjsonb.port': 5433, 'returner.pgjsonb.db': 'jobledger' },
        'f',
        OWN,
      ),
    ).not.toThrow();
    expect(() => refusePgjsonbOnOwnDatabase([{ role: 'master_job_cache', name: 'local_cache' }], {}, 'f', OWN)).not.toThrow();
  });
});
