// A return larger than one NATS message (1 MB): the agent keeps it in the object store bucket
// `ledger_returns` and its job.returned event names the object; `jobledger run` prints it whole,
// the projector stores it whole in salt_returns, and a replay and `audit verify` agree.

import { Objm } from '@nats-io/obj';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliHome } from './support/cli.js';

const AGENT = 'large-a1';
const SIZE = 1_500_000;
const home = new CliHome('jobledger-large-returns-');

beforeAll(async () => {
  await home.up([AGENT]);
}, 240_000);

afterAll(() => home.downAndRemove(), 120_000);

describe('returns larger than a NATS message', () => {
  it('are printed, stored and verified whole', async () => {
    const r = await home.run(['run', '-v', '--out', 'json', AGENT, 'cmd.run', `head -c ${SIZE} /dev/zero | tr '\\0' x`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const jid = /jid (\d{20})/.exec(r.stdout)![1]!;
    const doc = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as Record<string, string>;
    expect(doc[AGENT]).toBe('x'.repeat(SIZE));

    expect((await home.run(['db', 'wait'])).code).toBe(0);
    const rows = await home.query<{ n: number; ref: boolean; retcode: number }>(
      `SELECT length("return" #>> '{}')::int AS n, full_ret ? 'return_object' AS ref, (full_ret->>'retcode')::int AS retcode
       FROM salt_returns WHERE jid = $1`,
      [jid],
    );
    expect(rows).toEqual([{ n: SIZE, ref: false, retcode: 0 }]);

    // The stream keeps the event with its reference; the object store the return.
    const trail = await home.run(['audit', 'trail', '--jid', jid, '--out', 'json']);
    const returned = trail.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; event: { type: string; data: Record<string, unknown> } })
      .find((e) => e.event.type === 'job.returned')!;
    expect(returned.event.data.return).toBeNull();
    expect(returned.event.data.return_object).toMatchObject({ bucket: 'ledger_returns', size: SIZE + 2 });
    // Named by the job, the agent and a random nonce (other agents cannot guess it).
    const objectName = (returned.event.data.return_object as { name: string }).name;
    expect(objectName).toMatch(new RegExp(`^${jid}\\.${AGENT}\\.[A-Za-z0-9_-]{16}$`));

    const verify = await home.run(['audit', 'verify']);
    expect(verify.stdout).toMatch(/^audit verify: OK: /m);
    expect(verify.code).toBe(0);

    // The object taken away behind the ledger's back: the audit names it.
    const nc = await connect(home.natsOptions());
    try {
      await (await new Objm(nc).open('ledger_returns')).delete(objectName);
    } finally {
      await nc.close();
    }
    const after = await home.run(['audit', 'verify']);
    expect(after.code).toBe(1);
    expect(after.stdout).toContain(
      `ledger_returns: seq ${returned.seq} jid ${jid} id ${AGENT}: the return object ledger_returns/${objectName} is missing\n`,
    );
  });
});
