// The events bench/replay.js and bench/backlog.js append: jobs as the services would append them
// (job.published, then per expected agent proc.started, job.returned, proc.ended; 1-8 agents a
// job, list targets over a fleet of 8 ids that no running agent hosts, the function mix of
// bench/seed-jobs.js), signed as the services sign them (`signedFleet`).
import { createUser } from '@nats-io/nkeys';
import { rng } from './seed-jobs.js';
import { jobPublishedTag, jobReturnedTag, microsToJid, msgIds, procTag, saltStamp, subjects } from '@jobledger/core';
import { EventSigner, masterEventSigner } from '../packages/runtime/dist/index.js';
import { KeyStore, syncKeyEvents } from '../packages/runtime/dist/pki/index.js';

export const FLEET = ['web1', 'web2', 'web3', 'web4', 'db1', 'db2', 'app-01', 'app-02'];
const FUNS = ['test.ping', 'cmd.run', 'state.apply', 'grains.items', 'saltutil.find_job', 'pkg.install'];

function returnOf(fun, id, rand) {
  switch (fun) {
    case 'cmd.run':
      return ` 18:14:15 up ${Math.floor(rand() * 90)} days,  load average: 0.1`;
    case 'state.apply':
      return { 'pkg_|-nginx_|-nginx_|-installed': { result: true, comment: 'All specified packages are already installed', changes: {} } };
    case 'grains.items':
      return { id, os: 'Debian', osrelease: '12', kernel: 'Linux', num_cpus: 2 };
    case 'saltutil.find_job':
      return {};
    default:
      return true;
  }
}

/** The events of `count` jobs, in the order the services would append them. */
export function* events(count) {
  const rand = rng(count);
  const start = BigInt(Date.now() - 3_600_000) * 1000n;
  for (let i = 0; i < count; i++) {
    const jid = microsToJid(start + BigInt(i) * 100n);
    const fun = FUNS[Math.floor(rand() * FUNS.length)];
    const minions = [...FLEET]
      .sort(() => rand() - 0.5)
      .slice(0, 1 + Math.floor(rand() * FLEET.length))
      .sort();
    const arg = fun === 'cmd.run' ? ['uptime'] : [];
    yield [
      subjects.jobNew(jid),
      msgIds.jobNew(jid),
      {
        type: 'job.published',
        tag: jobPublishedTag(jid),
        data: { jid, tgt: minions, tgt_type: 'list', user: 'root', fun, arg, minions, missing: [], ret: '', _stamp: saltStamp() },
      },
    ];
    for (const [k, id] of minions.entries()) {
      const pid = 1000 + k;
      const base = { jid, id, fun, pid };
      yield [
        subjects.jobProc(jid, id),
        msgIds.proc(jid, id, 'started'),
        { type: 'proc.started', tag: procTag(jid, id, 'started'), data: { ...base, _stamp: saltStamp() } },
      ];
      yield [
        subjects.jobRet(jid, id),
        msgIds.jobRet(jid, id),
        {
          type: 'job.returned',
          tag: jobReturnedTag(jid, id),
          data: {
            cmd: '_return',
            id,
            jid,
            fun,
            fun_args: arg,
            return: returnOf(fun, id, rand),
            retcode: 0,
            success: true,
            user: 'root',
            _stamp: saltStamp(),
          },
        },
      ];
      yield [
        subjects.jobProc(jid, id),
        msgIds.proc(jid, id, 'ended'),
        { type: 'proc.ended', tag: procTag(jid, id, 'ended'), data: { ...base, outcome: 'returned', retcode: 0, _stamp: saltStamp() } },
      ];
    }
  }
}

/**
 * The fleet's keys, accepted in the master's key store as `salt-key -a` would and recorded in
 * the ledger's key events; returns each id's signer and the master's event signer.
 */
export async function signedFleet(ledger, pki) {
  const store = new KeyStore(pki);
  const signers = new Map();
  for (const id of FLEET) {
    const kp = createUser();
    store.put(id, 'accepted', kp.getPublicKey());
    signers.set(id, new EventSigner(new TextDecoder().decode(kp.getSeed())));
  }
  const master = masterEventSigner(pki);
  await syncKeyEvents(ledger, store, master, { ids: FLEET });
  return { signers, master };
}
