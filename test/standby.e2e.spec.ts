// `up --standby`: a second dispatcher in the queue group and a standby projector waiting for the
// projector's lock. kill -9 of the active one: the spare takes over, every return is projected
// once, and the restarted one waits as the new standby.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliHome } from './support/cli.js';
import { until } from './support/until.js';

const home = new CliHome('jobledger-standby-');

/** The agents that answered True, in any order (Salt prints returns as they arrive). */
const trueFrom = (stdout: string) => (stdout.match(/^[\w-]+(?=:\n {4}True$)/gm) ?? []).sort();

const log = (name: string) => {
  const f = path.join(home.root, 'logs', `${name}.log`);
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
};

beforeAll(async () => {
  const up = await home.run(['up', '--detach', '--standby', '--agents', 'sb-1,sb-2'], { timeoutMs: 180_000 });
  expect(up.stderr).toBe('');
  expect(up.code).toBe(0);
  home.pids = home.recordedPids();
  home.databaseUrl = (await home.run(['db', 'url'])).stdout.trim();
}, 240_000);

afterAll(() => home.downAndRemove(), 120_000);

describe('standby services', () => {
  it('runs a spare of each, the projector spare waiting for the lock', async () => {
    expect([...home.pids.keys()].sort()).toEqual(expect.arrayContaining(['dispatcher', 'dispatcher-2', 'projector', 'projector-standby']));
    await until('one projector to wait', () =>
      (log('projector') + log('projector-standby')).includes('standby: another projector applies the ledger; waiting to take over')
        ? true
        : undefined,
    );
    const started = [log('projector'), log('projector-standby')].filter((l) => l.includes('"msg":"projector started"'));
    expect(started).toHaveLength(1);
  });

  it('takes over within seconds of a kill -9, with every return projected exactly once', async () => {
    const first = await home.run(['run', '*', 'test.ping']);
    expect(trueFrom(first.stdout)).toEqual(['sb-1', 'sb-2']);
    const activeName = log('projector').includes('"msg":"projector started"') ? 'projector' : 'projector-standby';
    const spareName = activeName === 'projector' ? 'projector-standby' : 'projector';
    process.kill(home.pids.get(activeName)!, 'SIGKILL');
    process.kill(home.pids.get('dispatcher')!, 'SIGKILL');
    // The second dispatcher answers meanwhile; the spare projector projects.
    for (let i = 0; i < 5; i++) expect(trueFrom((await home.run(['run', '*', 'test.ping'])).stdout)).toEqual(['sb-1', 'sb-2']);
    await until(
      'the spare to take over',
      () => (log(spareName).includes('standby: the lock is ours, taking over') ? true : undefined),
      15_000,
    );
    expect((await home.run(['db', 'wait'], { timeoutMs: 60_000 })).code).toBe(0);
    const rows = await home.query<{ n: string; distinct: string }>(
      'select count(*) as n, count(distinct (jid, id)) as distinct from salt_returns',
    );
    expect(rows).toEqual([{ n: '12', distinct: '12' }]);
    // The killed one is restarted by the supervisor and waits as the new standby.
    await until('the restarted projector to wait', () =>
      log(activeName).split('standby: another projector applies the ledger').length > 1 ? true : undefined,
    );
    const verify = await home.run(['audit', 'verify'], { timeoutMs: 120_000 });
    expect(verify.stdout).toMatch(/^audit verify: OK: /m);
    home.pids = home.recordedPids();
  }, 120_000);
});
