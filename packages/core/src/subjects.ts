import { decodeAgentId, encodeAgentId } from './subject-codec.js';

/** The stream's subject space. Every event of the ledger lives under `ledger.>`. */
export const LEDGER_SUBJECTS = 'ledger.>';

export const subjects = {
  jobNew: (jid: string) => `ledger.job.${jid}.new`,
  jobRet: (jid: string, agentId: string) => `ledger.job.${jid}.ret.${encodeAgentId(agentId)}`,
  jobProc: (jid: string, agentId: string) => `ledger.job.${jid}.proc.${encodeAgentId(agentId)}`,
  /** A `--return` returner that failed on an agent. */
  jobReturner: (jid: string, agentId: string) => `ledger.job.${jid}.returner.${encodeAgentId(agentId)}`,
  /** Everything about one job (new, returns, procs). */
  jobAll: (jid: string) => `ledger.job.${jid}.>`,
  /** Every job publication, for the agents' consumers. */
  allJobNew: 'ledger.job.*.new',
  agentStart: (agentId: string) => `ledger.agent.${encodeAgentId(agentId)}.start`,
  runNew: (jid: string) => `ledger.run.${jid}.new`,
  runRet: (jid: string) => `ledger.run.${jid}.ret`,
  /** A publish refused by the ACL (one subject: no jid was assigned). */
  publishDenied: 'ledger.publish.denied',
  /** One id's key events (accepted, rejected, deleted): its last message is the id's key state. */
  key: (agentId: string) => `ledger.key.${encodeAgentId(agentId)}`,
  allKeys: 'ledger.key.>',
} as const;

/** Request/reply subjects of the dispatcher's API (outside the stream's `ledger.>`). */
export const apiSubjects = {
  publish: 'jobledger.api.publish',
  runner: 'jobledger.api.runner',
  /**
   * The same requests from the HTTP API, for users it authenticated by `external_auth`: only
   * the API's credentials may send them, and the dispatcher applies the eauth ACL, not
   * `publisher_acl`. Outside `jobledger.api.>`, which the operator's CLI may use.
   */
  netapiPublish: 'jobledger.netapi.publish',
  netapiRunner: 'jobledger.netapi.runner',
  /** salt-api's `wheel` client (`key.*`): served by the keyserver, which owns the key store. */
  netapiWheel: 'jobledger.netapi.wheel',
} as const;

export type ParsedSubject =
  | { kind: 'job.new'; jid: string }
  | { kind: 'job.ret'; jid: string; agentId: string }
  | { kind: 'job.proc'; jid: string; agentId: string }
  | { kind: 'job.returner'; jid: string; agentId: string }
  | { kind: 'agent.start'; agentId: string }
  | { kind: 'run.new'; jid: string }
  | { kind: 'run.ret'; jid: string }
  | { kind: 'publish.denied' }
  | { kind: 'key'; agentId: string };

/** Parses a ledger subject; `undefined` for anything that is not one of ours. */
export function parseSubject(subject: string): ParsedSubject | undefined {
  const t = subject.split('.');
  if (t[0] !== 'ledger') return undefined;
  try {
    if (t[1] === 'job' && t.length === 4 && t[3] === 'new') return { kind: 'job.new', jid: t[2]! };
    if (t[1] === 'job' && t.length === 5 && t[3] === 'ret') return { kind: 'job.ret', jid: t[2]!, agentId: decodeAgentId(t[4]!) };
    if (t[1] === 'job' && t.length === 5 && t[3] === 'proc') return { kind: 'job.proc', jid: t[2]!, agentId: decodeAgentId(t[4]!) };
    if (t[1] === 'job' && t.length === 5 && t[3] === 'returner') return { kind: 'job.returner', jid: t[2]!, agentId: decodeAgentId(t[4]!) };
    if (t[1] === 'agent' && t.length === 4 && t[3] === 'start') return { kind: 'agent.start', agentId: decodeAgentId(t[2]!) };
    if (t[1] === 'run' && t.length === 4 && t[3] === 'new') return { kind: 'run.new', jid: t[2]! };
    if (t[1] === 'run' && t.length === 4 && t[3] === 'ret') return { kind: 'run.ret', jid: t[2]! };
    if (t[1] === 'publish' && t.length === 3 && t[2] === 'denied') return { kind: 'publish.denied' };
    if (t[1] === 'key' && t.length === 3) return { kind: 'key', agentId: decodeAgentId(t[2]!) };
  } catch {
    return undefined;
  }
  return undefined;
}

/** Deterministic `Nats-Msg-Id`s, so a retried publish is stored once. */
export const msgIds = {
  jobNew: (jid: string) => `${jid}:new`,
  jobRet: (jid: string, agentId: string) => `${jid}:ret:${agentId}`,
  proc: (jid: string, agentId: string, what: string) => `${jid}:proc:${agentId}:${what}`,
  returnerFailed: (jid: string, agentId: string, returner: string) => `${jid}:returner:${agentId}:${returner}`,
  agentStart: (agentId: string, bootId: string) => `start:${agentId}:${bootId}`,
  runNew: (jid: string) => `${jid}:run:new`,
  runRet: (jid: string) => `${jid}:run:ret`,
  publishDenied: (attempt: string) => `denied:${attempt}`,
  /** A client's publish request id: the same request sent again stores its job once. */
  request: (requestId: string) => `request:${requestId}`,
  /** After the id's key event at `priorSeq` (0: none): two masters syncing the same change store it once. */
  key: (agentId: string, act: string, publicKey: string, priorSeq: number) => `key:${agentId}:${act}:${publicKey}:${priorSeq}`,
} as const;
