import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createUser, type KeyPair } from '@nats-io/nkeys';
import { describe, expect, it } from 'vitest';
import { KeyBook, parseSubject, signatureProblem, signedBytes, subjects, type KeyEvent, type SignatureTrust } from '@jobledger/core';
import { credsEventSigner, EventSigner, verifyEventSignature } from './event-signing.js';

const enc = new TextEncoder();
const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64url');
const trustOf = (master: KeyPair): SignatureTrust => ({ masterKeys: [master.getPublicKey()], verify: verifyEventSignature });

const keyEvent = (type: KeyEvent['type'], id: string, pub: string): KeyEvent =>
  ({
    type,
    tag: 'salt/key',
    data: {
      id,
      act: { 'key.accepted': 'accept', 'key.rejected': 'reject', 'key.deleted': 'delete' }[type],
      result: true,
      pub,
      _stamp: '2026-12-05T12:00:00',
    },
  }) as KeyEvent;

describe('signed events', () => {
  const master = createUser();
  const agent = createUser();
  const stranger = createUser();
  const trust = trustOf(master);
  const ret = subjects.jobRet('20261205120000000000', 'web1');
  const body = enc.encode('{"x":1}');
  const signed = (kp: KeyPair, subject: string, data = body) => ({
    subject,
    data,
    signer: kp.getPublicKey(),
    signature: b64(kp.sign(signedBytes(subject, data))),
  });

  it('trusts an agent event signed by the key its id was accepted with, at that point of the ledger only', () => {
    const book = new KeyBook();
    const m = signed(agent, ret);
    expect(signatureProblem(trust, book, m, parseSubject(ret)!)).toMatch(/has no accepted key at this point/);
    book.apply(keyEvent('key.accepted', 'web1', agent.getPublicKey()), 1);
    expect(signatureProblem(trust, book, m, parseSubject(ret)!)).toBeUndefined();
    // Rejecting another key leaves the accepted one; deleting the accepted one ends it.
    book.apply(keyEvent('key.rejected', 'web1', stranger.getPublicKey()), 2);
    expect(signatureProblem(trust, book, m, parseSubject(ret)!)).toBeUndefined();
    book.apply(keyEvent('key.deleted', 'web1', agent.getPublicKey()), 3);
    expect(signatureProblem(trust, book, m, parseSubject(ret)!)).toMatch(/has no accepted key/);
  });

  it("signs with node's ed25519 what nkeys verifies, from a seed or a .creds file", async () => {
    const signer = new EventSigner(new TextDecoder().decode(agent.getSeed()));
    expect(signer.publicKey).toBe(agent.getPublicKey());
    const sig = signer.sign(ret, body);
    expect(agent.verify(signedBytes(ret, body), Buffer.from(sig, 'base64url'))).toBe(true);
    expect(verifyEventSignature(agent.getPublicKey(), signedBytes(ret, body), sig)).toBe(true);
    const { fmtCreds } = await import('@nats-io/jwt');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jobledger-creds-'));
    try {
      fs.writeFileSync(path.join(dir, 'a.creds'), fmtCreds('eyJ0eXAiOiJKV1QifQ.e30.sig', agent));
      expect(credsEventSigner(path.join(dir, 'a.creds')).publicKey).toBe(agent.getPublicKey());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names an unsigned event, a stranger, a bad signature and an agent signing a master event', () => {
    const book = new KeyBook([['web1', { publicKey: agent.getPublicKey(), state: 'accepted', seq: 1 }]]);
    const p = parseSubject(ret)!;
    expect(signatureProblem(trust, book, { subject: ret, data: body }, p)).toMatch(/^unsigned event/);
    expect(signatureProblem(trust, book, signed(stranger, ret), p)).toMatch(/is not the accepted key of 'web1'/);
    // Signed over another subject or other bytes.
    expect(signatureProblem(trust, book, { ...signed(agent, subjects.jobRet('20261205120000000000', 'web2')), subject: ret }, p)).toMatch(
      /^bad signature/,
    );
    expect(signatureProblem(trust, book, { ...signed(agent, ret), data: enc.encode('{"x":2}') }, p)).toMatch(/^bad signature/);
    expect(signatureProblem(trust, book, { ...signed(agent, ret), signature: 'not-base64!' }, p)).toMatch(/^bad signature/);
    const good = signed(agent, ret).signature;
    expect(signatureProblem(trust, book, { ...signed(agent, ret), signature: good.slice(0, 40) }, p)).toMatch(/^bad signature/);
    expect(signatureProblem(trust, book, { ...signed(agent, ret), signature: good + 'AAAA' }, p)).toMatch(/^bad signature/);
    const job = subjects.jobNew('20261205120000000000');
    expect(signatureProblem(trust, book, signed(agent, job), parseSubject(job)!)).toMatch(/is not the master's event key/);
    expect(signatureProblem(trust, book, signed(master, job), parseSubject(job)!)).toBeUndefined();
  });
});
