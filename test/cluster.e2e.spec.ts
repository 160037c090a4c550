// `up --cluster 3`: three nats-servers on loopback as one JetStream cluster, the stream and the
// buckets at R3, every client given every node. kill -9 of the stream leader's node in the
// middle of a job: the waiting `run` still prints every return, nothing acknowledged is lost,
// and the supervisor starts the node again on its store.
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, CliHome } from './support/cli.js';
import { reportFault } from './support/fault-line.js';
import { until } from './support/until.js';

const home = new CliHome('jobledger-cluster-');
const IDS = ['cl-1', 'cl-2', 'cl-3'];
const NODES = ['nats-server', 'nats-server-2', 'nats-server-3'];

/** The agents that printed `text` as their return, in any order. */
const answered = (stdout: string, text: string) => (stdout.match(new RegExp(`^[\\w-]+(?=:\\n {4}${text}$)`, 'gm')) ?? []).sort();

async function streamInfo(name: string) {
  const nc = await connect(home.natsOptions());
  try {
    return await (await jetstreamManager(nc)).streams.info(name);
  } finally {
    await nc.close();
  }
}

let summary = '';
beforeAll(async () => {
  const up = await home.run(['up', '--detach', '--cluster', '3', '--agents', IDS.join(',')], { timeoutMs: 180_000 });
  expect(up.stderr).toBe('');
  expect(up.code).toBe(0);
  summary = up.stdout;
  home.pids = home.recordedPids();
  home.databaseUrl = (await home.run(['db', 'url'])).stdout.trim();
}, 240_000);

afterAll(() => home.downAndRemove(), 120_000);

describe('a three-node JetStream cluster', () => {
  it('runs three nats-servers as one cluster, with the ledger replicated on each', async () => {
    expect(summary).toMatch(
      /nats: {7}tls:\/\/127\.0\.0\.1:\d+,tls:\/\/127\.0\.0\.1:\d+,tls:\/\/127\.0\.0\.1:\d+ \(cluster 'jobledger' of 3 nodes, R3\)/,
    );
    for (const name of NODES) expect(alive(home.pids.get(name)!), name).toBe(true);
    for (const stream of ['LEDGER', 'KV_ledger_agents', 'KV_ledger_agent_progress', 'OBJ_ledger_returns']) {
      const info = await streamInfo(stream);
      expect(info.config.num_replicas, stream).toBe(3);
      expect(info.cluster?.name, stream).toBe('jobledger');
      expect(info.cluster?.replicas ?? [], stream).toHaveLength(2);
    }
    const ping = await home.run(['run', '*', 'test.ping']);
    expect(answered(ping.stdout, 'True')).toEqual(IDS);
    // What an agent on another host is given: every node.
    const url = await home.run(['master', 'url']);
    expect(url.stdout.split('\n')[0]!.split(',')).toHaveLength(3);
  });

  it("loses nothing when the stream leader's node is killed in the middle of a job", async () => {
    const before = await streamInfo('LEDGER');
    const leader = before.cluster!.leader!; // jobledger-<i>
    const node = NODES[Number(leader.split('-')[1]) - 1]!;
    const pid = home.pids.get(node)!;
    const job = home.run(['run', '*', 'cmd.run', 'sleep 3; echo after-the-kill'], { timeoutMs: 90_000 });
    await new Promise((r) => setTimeout(r, 1_000));
    process.kill(pid, 'SIGKILL');
    const killed = Date.now();
    const elected = until(
      'a stream leader again',
      async () => ((await streamInfo('LEDGER').catch(() => undefined))?.cluster?.leader ? Date.now() - killed : undefined),
      60_000,
    );
    const done = await job;
    const leaderlessMs = await elected;
    expect(done.stderr, done.stdout).toBe('');
    expect(done.code).toBe(0);
    expect(answered(done.stdout, 'after-the-kill')).toEqual(IDS);

    // A leader again (another node, or the killed one if it was back before the election
    // ended: a loaded machine); the killed one is started again and catches up.
    const after = await streamInfo('LEDGER');
    expect(after.cluster!.leader).toMatch(/^jobledger-\d$/);
    await until('the node to be restarted', () => {
      const again = home.recordedPids().get(node);
      return again !== undefined && again !== pid && alive(again) ? again : undefined;
    });
    await until(
      'three current replicas',
      async () => {
        const info = await streamInfo('LEDGER');
        return info.cluster?.replicas?.length === 2 && info.cluster.replicas.every((r) => r.current) ? true : undefined;
      },
      60_000,
    );
    expect(answered((await home.run(['run', '*', 'test.ping'])).stdout, 'True')).toEqual(IDS);
    expect((await home.run(['db', 'wait'], { timeoutMs: 60_000 })).code).toBe(0);
    const rows = await home.query<{ n: string; distinct: string }>(
      "select count(*) as n, count(distinct (jid, id)) as distinct from salt_returns where fun = 'cmd.run'",
    );
    const [lost] = await home.query<{ n: string }>("select count(*) as n from procs where fun = 'cmd.run' and outcome = 'lost'");
    reportFault(
      'stream leader killed',
      undefined,
      `${leader} of 3 killed during cmd.run, a leader again ${leaderlessMs} ms after, the waiting run printed ${answered(done.stdout, 'after-the-kill').length} of ${IDS.length} returns`,
      1,
      0,
      {
        expected: IDS.length,
        found: Number(rows[0]!.n),
        lost: Number(lost!.n),
        duplicated: Number(rows[0]!.n) - Number(rows[0]!.distinct),
      },
    );
    expect(rows).toEqual([{ n: '3', distinct: '3' }]);
    const verify = await home.run(['audit', 'verify'], { timeoutMs: 120_000 });
    expect(verify.stdout).toMatch(/^audit verify: OK: /m);
    home.pids = home.recordedPids();
  }, 180_000);

  it('stores a job published while the cluster elects a new leader, once', async () => {
    const leader = (await streamInfo('LEDGER')).cluster!.leader!;
    const node = NODES[Number(leader.split('-')[1]) - 1]!;
    const pid = home.pids.get(node)!;
    process.kill(pid, 'SIGKILL');
    // Published at once: the dispatcher's append meets a leaderless stream and retries it.
    const ping = await home.run(['run', '*', 'test.echo', 'during-the-election'], { timeoutMs: 60_000 });
    expect(ping.stderr).toBe('');
    expect(answered(ping.stdout, 'during-the-election')).toEqual(IDS);
    await until('the node to be restarted', () => {
      const again = home.recordedPids().get(node);
      return again !== undefined && again !== pid && alive(again) ? again : undefined;
    });
    expect((await home.run(['db', 'wait'], { timeoutMs: 60_000 })).code).toBe(0);
    const jobs = await home.query<{ n: string }>("select count(*) as n from jids where load::text like '%during-the-election%'");
    expect(jobs).toEqual([{ n: '1' }]);
    home.pids = home.recordedPids();
  }, 180_000);

  it('refuses --cluster beside servers of your own, and a size it cannot run', async () => {
    const own = await home.run(['up', '--cluster', '3'], { env: { JOBLEDGER_NATS_URL: 'tls://127.0.0.1:1' } });
    expect(own.code).toBe(1);
    expect(own.stderr).toMatch(/--cluster starts local nats-servers; JOBLEDGER_NATS_URL names servers of your own/);
    const big = await home.run(['master', '--cluster', '9']);
    expect(big.code).toBe(1);
    expect(big.stderr).toBe('jobledger master: --cluster must be a whole number from 1 to 7, got 9\n');
  });
});
