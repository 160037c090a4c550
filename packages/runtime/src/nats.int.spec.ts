import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEDGER_SUBJECTS } from '@jobledger/core';
import { startNatsServer, type NatsServerHandle } from '../../cli/src/embedded/nats-server.js';
import { openLedger, type Ledger } from './nats.js';

let dir: string;
let nats: NatsServerHandle;
const opened: Ledger[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'jobledger-runtime-nats-'));
  await chmod(dir, 0o755);
  nats = await startNatsServer({ storeDir: path.join(dir, 'nats') });
});

afterAll(async () => {
  await Promise.allSettled(opened.map((l) => l.nc.close()));
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function open(stream: string): Promise<Ledger> {
  const l = await openLedger({ natsUrl: nats.url, stream, name: 'runtime-nats-test' });
  opened.push(l);
  return l;
}

describe('the ledger stream is append-only', () => {
  it('refuses to delete a message or purge the stream', async () => {
    const l = await open('APPEND_ONLY');
    await l.js.publish('ledger.job.20261126000000000001.new', '{}');
    const { config } = await l.jsm.streams.info('APPEND_ONLY');
    expect(config).toMatchObject({ deny_delete: true, deny_purge: true });
    await expect(l.jsm.streams.deleteMessage('APPEND_ONLY', 1)).rejects.toThrow();
    await expect(l.jsm.streams.purge('APPEND_ONLY')).rejects.toThrow();
    expect((await l.jsm.streams.info('APPEND_ONLY')).state.messages).toBe(1);
    await l.jsm.streams.delete('APPEND_ONLY');
  });

  it('makes a stream created without deny_delete / deny_purge append-only when opened', async () => {
    const first = await open('APPEND_ONLY');
    await first.jsm.streams.delete('APPEND_ONLY').catch(() => undefined);
    await first.jsm.streams.add({ name: 'OLD', subjects: [LEDGER_SUBJECTS], deny_delete: false, deny_purge: false });
    await first.js.publish('ledger.job.20261126000000000002.new', '{}');
    const l = await open('OLD');
    expect((await l.jsm.streams.info('OLD')).config).toMatchObject({ deny_delete: true, deny_purge: true });
    await expect(l.jsm.streams.purge('OLD')).rejects.toThrow();
    expect((await l.jsm.streams.info('OLD')).state.messages).toBe(1);
  });
});
