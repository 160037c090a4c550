// A checkpoint beyond the stream's end (the stream recreated, JOBLEDGER_STREAM naming another
// one): given a live checkpoint above the stream's last sequence, when a swap or a verify
// catches up to it, then it fails at once with a clear error and releases the checkpoint —
// it never waits for messages that will not come. A reader that receives nothing fails after
// its idle timeout. Real nats-server and PostgreSQL.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditVerify } from './audit-verify.js';
import { replay } from './replay.js';
import { checkBeyondStream, StreamCursor, StreamReadError } from './stream-cursor.js';
import { agentStarted, append, lastSeq, MASTER_ID, quietLogger, rows, world, type World } from '../test/support.js';
import { startProjector } from './projector.js';

let w: World;
let last: number;
const NAME = 'projector';

beforeAll(async () => {
  w = await world('cursor');
  await append(w.ledger, agentStarted('web1'), agentStarted('web2'), agentStarted('web3'));
  last = await lastSeq(w.ledger);
  // the tables, then a checkpoint the stream does not reach
  const p = await startProjector(w.config(), quietLogger());
  await p.stop();
  await w.db.query('INSERT INTO projector_checkpoint (name, last_seq) VALUES ($1, $2)', [NAME, last + 40]);
}, 60_000);

afterAll(async () => {
  await w?.close();
});

const beyond = (seq: number) =>
  new RegExp(`^the live checkpoint ${seq} is beyond the last sequence ${last} of stream LEDGER: is JOBLEDGER_STREAM right\\?$`);

describe('a checkpoint beyond the stream', () => {
  it('checkBeyondStream names both sequences; a sequence the stream holds passes', async () => {
    await expect(checkBeyondStream(w.ledger, last + 1)).rejects.toThrow(beyond(last + 1));
    await expect(checkBeyondStream(w.ledger, last + 1)).rejects.toBeInstanceOf(StreamReadError);
    await expect(checkBeyondStream(w.ledger, last)).resolves.toBe(last);
  });

  it('replay --swap and audit verify fail at once and leave the checkpoint unlocked', async () => {
    const base = { databaseUrl: w.databaseUrl, ledger: w.ledger, name: NAME, masterId: MASTER_ID };
    const started = Date.now();
    await expect(replay({ ...base, into: 'swapped', swap: true })).rejects.toThrow(beyond(last + 40));
    await expect(auditVerify(base)).rejects.toThrow(beyond(last + 40));
    expect(Date.now() - started).toBeLessThan(10_000);
    // nothing holds the row any more, nothing was swapped
    const client = await w.db.connect();
    try {
      await client.query('BEGIN');
      await client.query("SET LOCAL lock_timeout = '1s'");
      expect(await client.query('SELECT last_seq FROM projector_checkpoint WHERE name = $1 FOR UPDATE', [NAME])).toMatchObject({
        rowCount: 1,
      });
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    expect(await rows(w.db, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'public_before_%'")).toEqual([]);
    await w.db.query('DROP SCHEMA IF EXISTS swapped CASCADE');
  });

  it('the projector does not start on such a checkpoint without a chain: it says why', async () => {
    await w.db.query('UPDATE projector_checkpoint SET chain = NULL WHERE name = $1', [NAME]);
    await expect(startProjector(w.config(), quietLogger())).rejects.toThrow(
      new RegExp(`^the checkpoint "${NAME}" ${last + 40} is beyond the last sequence ${last} of stream LEDGER`),
    );
  });
});

describe('StreamCursor', () => {
  it('gives the messages up to a sequence, then fails after its idle timeout instead of waiting for ever', async () => {
    const cursor = await StreamCursor.open(w.ledger, 1, { idleTimeoutMs: 300 });
    try {
      expect((await cursor.take(100, last)).map((m) => m.seq)).toEqual(Array.from({ length: last }, (_, i) => i + 1));
      const started = Date.now();
      await expect(cursor.take(100, last + 1)).rejects.toThrow(/^no message from the stream for 0.3 s while reading up to sequence \d+$/);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await cursor.close();
    }
  });
});
