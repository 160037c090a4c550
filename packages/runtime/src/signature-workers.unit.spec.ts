import { createUser } from '@nats-io/nkeys';
import { afterAll, describe, expect, it } from 'vitest';
import { signedBytes } from '@jobledger/core';
import { EventSigner, verifyEventSignature } from './event-signing.js';
import { SignatureWorkers, type SignedItem } from './signature-workers.js';

const enc = new TextEncoder();

describe('signature workers', () => {
  const workers = new SignatureWorkers(2);
  afterAll(() => workers.close());

  it('answer as verifyEventSignature does, item by item, over more items than one worker gets', async () => {
    const agent = createUser();
    const stranger = createUser();
    const signer = new EventSigner(new TextDecoder().decode(agent.getSeed()));
    const items: SignedItem[] = [];
    for (let i = 0; i < 101; i++) {
      const subject = `ledger.job.2026120512000000${String(i).padStart(4, '0')}.ret.d2Vi`;
      const body = enc.encode(JSON.stringify({ i }));
      const signature = signer.sign(subject, body);
      const bytes = signedBytes(subject, body);
      switch (i % 5) {
        case 0:
          items.push({ signer: agent.getPublicKey(), bytes, signature });
          break;
        case 1: // other bytes
          items.push({ signer: agent.getPublicKey(), bytes: signedBytes(subject, enc.encode('{}')), signature });
          break;
        case 2: // another key
          items.push({ signer: stranger.getPublicKey(), bytes, signature });
          break;
        case 3: // cut short
          items.push({ signer: agent.getPublicKey(), bytes, signature: signature.slice(0, 40) });
          break;
        default: // not an nkey
          items.push({ signer: 'not-a-key', bytes, signature });
      }
    }
    const got = await workers.verify(items);
    expect(got).toEqual(items.map((it) => it.signer !== 'not-a-key' && verifyEventSignature(it.signer, it.bytes, it.signature)));
    expect(got.filter(Boolean)).toHaveLength(21);
    expect(await workers.verify([])).toEqual([]);
  });

  it('refuses work once closed', async () => {
    const w = new SignatureWorkers(1);
    await w.close();
    await expect(w.verify([{ signer: createUser().getPublicKey(), bytes: new Uint8Array(1), signature: 'x' }])).rejects.toThrow(/closed/);
  });
});
