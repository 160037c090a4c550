import { describe, expect, it } from 'vitest';
import { ConfigError } from '@jobledger/runtime';
import { loadConfig } from './config.js';

const base = { JOBLEDGER_NATS_URL: 'nats://127.0.0.1:4222', DATABASE_URL: 'postgres://u@localhost/db' };

describe('loadConfig', () => {
  it('has defaults for everything but the two URLs', () => {
    const c = loadConfig({ ...base, JOBLEDGER_MASTER_ID: 'master_master' });
    expect(c).toMatchObject({
      natsUrl: base.JOBLEDGER_NATS_URL,
      databaseUrl: base.DATABASE_URL,
      stream: 'LEDGER',
      masterId: 'master_master',
      batch: 500,
      nice: 10,
      consumer: 'projector',
      readyFile: undefined,
      logFile: undefined,
    });
  });

  it('reads the batch size, consumer name, ready file and log file', () => {
    const c = loadConfig({
      ...base,
      JOBLEDGER_PROJECTOR_BATCH: '2000',
      JOBLEDGER_PROJECTOR_NICE: '0',
      JOBLEDGER_PROJECTOR_CONSUMER: 'projector-b',
      JOBLEDGER_READY_FILE: '/tmp/p.ready',
      JOBLEDGER_LOG_FILE: '/tmp/p.log',
      JOBLEDGER_STREAM: 'L2',
    });
    expect(c).toMatchObject({
      batch: 2000,
      nice: 0,
      consumer: 'projector-b',
      readyFile: '/tmp/p.ready',
      logFile: '/tmp/p.log',
      stream: 'L2',
    });
  });

  it.each([
    [{ JOBLEDGER_NATS_URL: 'nats://x' }, 'DATABASE_URL is not set'],
    [{ DATABASE_URL: 'postgres://x' }, 'JOBLEDGER_NATS_URL is not set'],
    [{ ...base, JOBLEDGER_PROJECTOR_BATCH: '0' }, 'JOBLEDGER_PROJECTOR_BATCH must be an integer from 1 to 20000'],
    [{ ...base, JOBLEDGER_PROJECTOR_BATCH: '1.5' }, 'JOBLEDGER_PROJECTOR_BATCH must be an integer from 1 to 20000'],
    [{ ...base, JOBLEDGER_PROJECTOR_BATCH: '50000' }, 'JOBLEDGER_PROJECTOR_BATCH must be an integer from 1 to 20000'],
    [{ ...base, JOBLEDGER_PROJECTOR_NICE: '20' }, 'JOBLEDGER_PROJECTOR_NICE must be an integer from 0 to 19'],
    [{ ...base, JOBLEDGER_PROJECTOR_CONSUMER: 'a.b' }, 'JOBLEDGER_PROJECTOR_CONSUMER must be'],
    [{ ...base, JOBLEDGER_MASTER_ID: 'm'.repeat(256) }, 'JOBLEDGER_MASTER_ID must be 1-255 characters'],
  ])('fails naming the variable: %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
