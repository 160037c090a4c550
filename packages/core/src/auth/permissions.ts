import { encodeAgentId } from '../subject-codec.js';
import { AGENTS_BUCKET, PROGRESS_BUCKET, RETURNS_BUCKET } from '../stream.js';
import { apiSubjects, subjects } from '../subjects.js';

/**
 * What each role may publish and subscribe to, as data: the server enforces it (these lists go
 * into the users' JWTs, see runtime's `pki/`), and a test checks them against the subjects the
 * code uses. Everything not allowed is refused by nats-server.
 */

export interface SubjectPermissions {
  pub: { allow: string[]; deny: string[] };
  sub: { allow: string[]; deny: string[] };
  /** Replies to requests this user received (NATS's `allow_responses`). */
  allowResponses?: boolean;
}

export type Role = 'agent' | 'dispatcher' | 'projector' | 'cli' | 'keyserver' | 'api' | 'admin';

/** Every connection's inbox is `_INBOX.<its user public key>`: no user reads another's replies. */
export function inboxPrefix(userPublicKey: string): string {
  return `_INBOX.${userPublicKey}`;
}

const JS = '$JS.API';

/** What no day-to-day user may do to the ledger: delete, purge, reconfigure or seal it, or take a message out. */
function streamGuards(stream: string): string[] {
  return [
    `${JS}.STREAM.DELETE.${stream}`,
    `${JS}.STREAM.PURGE.${stream}`,
    `${JS}.STREAM.UPDATE.${stream}`,
    `${JS}.STREAM.MSG.DELETE.${stream}`,
    `${JS}.STREAM.DELETE.KV_${AGENTS_BUCKET}`,
    `${JS}.STREAM.PURGE.KV_${AGENTS_BUCKET}`,
    `${JS}.STREAM.UPDATE.KV_${AGENTS_BUCKET}`,
    `${JS}.STREAM.MSG.DELETE.KV_${AGENTS_BUCKET}`,
    `${JS}.STREAM.DELETE.KV_${PROGRESS_BUCKET}`,
    `${JS}.STREAM.PURGE.KV_${PROGRESS_BUCKET}`,
    `${JS}.STREAM.UPDATE.KV_${PROGRESS_BUCKET}`,
    `${JS}.STREAM.MSG.DELETE.KV_${PROGRESS_BUCKET}`,
    `${JS}.STREAM.DELETE.OBJ_${RETURNS_BUCKET}`,
    `${JS}.STREAM.PURGE.OBJ_${RETURNS_BUCKET}`,
    `${JS}.STREAM.UPDATE.OBJ_${RETURNS_BUCKET}`,
    `${JS}.STREAM.MSG.DELETE.OBJ_${RETURNS_BUCKET}`,
    `${JS}.STREAM.CREATE.${stream}`,
  ];
}

/** The subjects an agent id publishes its own events on. */
export function agentEventSubjects(id: string): string[] {
  const t = encodeAgentId(id);
  return [`ledger.job.*.proc.${t}`, `ledger.job.*.ret.${t}`, `ledger.job.*.returner.${t}`, `ledger.agent.${t}.>`];
}

export interface AgentPermissionOptions {
  stream: string;
  /** The process's group: its durable consumer. */
  group: string;
  ids: readonly string[];
  userPublicKey: string;
}

/**
 * An agent: reads job publications only through its own durable consumer, publishes only its
 * own ids' events, presence keys and large-return objects, reads back only its own ids'
 * returns and procs (catch-up), and cannot delete, purge or update anything.
 */
export function agentPermissions(o: AgentPermissionOptions): SubjectPermissions {
  const s = o.stream;
  const g = o.group;
  const pub = [
    `${JS}.INFO`,
    `${JS}.STREAM.INFO.${s}`,
    `${JS}.STREAM.INFO.KV_${AGENTS_BUCKET}`,
    `${JS}.STREAM.INFO.KV_${PROGRESS_BUCKET}`,
    `${JS}.CONSUMER.INFO.${s}.${g}`,
    // nats-server 2.9 names the filter in the create subject; only job publications.
    `${JS}.CONSUMER.CREATE.${s}.${g}.ledger.job.*.new`,
    `${JS}.CONSUMER.DURABLE.CREATE.${s}.${g}`,
    `${JS}.CONSUMER.MSG.NEXT.${s}.${g}`,
    // Its own durable only, recreated for catch-up.
    `${JS}.CONSUMER.DELETE.${s}.${g}`,
    `$JS.ACK.${s}.${g}.>`,
    // Large returns: chunks and meta of the object store, written without reading the bucket
    // (runtime's storeReturn); names and chunk ids are random, so other agents cannot aim at them.
    `$O.${RETURNS_BUCKET}.C.*`,
    `$O.${RETURNS_BUCKET}.M.*`,
  ];
  for (const id of o.ids) {
    const t = encodeAgentId(id);
    pub.push(...agentEventSubjects(id));
    pub.push(`$KV.${AGENTS_BUCKET}.${t}`);
    pub.push(`${JS}.DIRECT.GET.KV_${AGENTS_BUCKET}.$KV.${AGENTS_BUCKET}.${t}`);
    pub.push(`$KV.${PROGRESS_BUCKET}.${t}`);
    pub.push(`${JS}.DIRECT.GET.KV_${PROGRESS_BUCKET}.$KV.${PROGRESS_BUCKET}.${t}`);
    pub.push(`${JS}.DIRECT.GET.${s}.ledger.job.*.ret.${t}`);
    pub.push(`${JS}.DIRECT.GET.${s}.ledger.job.*.proc.${t}`);
    pub.push(`${JS}.DIRECT.GET.${s}.ledger.job.*.returner.${t}`);
    pub.push(`${JS}.DIRECT.GET.${s}.ledger.agent.${t}.>`);
  }
  return {
    pub: { allow: pub, deny: streamGuards(s) },
    sub: { allow: [`${inboxPrefix(o.userPublicKey)}.>`], deny: [] },
  };
}

/** The master's services and the operator's CLI: the JetStream API without the destructive calls. */
function masterSide(stream: string, userPublicKey: string, extraPub: string[], extraSub: string[] = []): SubjectPermissions {
  return {
    pub: {
      allow: [`${JS}.>`, `$JS.ACK.>`, `$JS.FC.>`, ...extraPub],
      deny: streamGuards(stream),
    },
    sub: { allow: [`${inboxPrefix(userPublicKey)}.>`, ...extraSub], deny: [] },
  };
}

export function rolePermissions(role: Exclude<Role, 'agent'>, stream: string, userPublicKey: string): SubjectPermissions {
  switch (role) {
    case 'dispatcher':
      return {
        ...masterSide(
          stream,
          userPublicKey,
          ['ledger.job.*.new', 'ledger.run.*.new', 'ledger.run.*.ret', subjects.publishDenied],
          [apiSubjects.publish, apiSubjects.runner, apiSubjects.netapiPublish, apiSubjects.netapiRunner],
        ),
        allowResponses: true,
      };
    case 'projector':
      return masterSide(stream, userPublicKey, []);
    case 'cli':
      return masterSide(stream, userPublicKey, ['jobledger.api.>', `$KV.${AGENTS_BUCKET}.>`, `$KV.${PROGRESS_BUCKET}.>`, 'ledger.key.>']);
    case 'keyserver':
      // Key events; the HTTP API's wheel calls (`key.*`), whose refusals it records, and whose
      // rejections and deletions forget the agents' presence.
      return {
        ...masterSide(
          stream,
          userPublicKey,
          ['ledger.key.>', subjects.publishDenied, `$KV.${AGENTS_BUCKET}.>`, `$KV.${PROGRESS_BUCKET}.>`],
          [apiSubjects.netapiWheel],
        ),
        allowResponses: true,
      };
    case 'api':
      // The HTTP API: its users' calls go to the dispatcher on `jobledger.netapi.*`, which applies
      // their eauth ACL; it reads the stream for job returns and its event feed.
      return masterSide(stream, userPublicKey, ['jobledger.netapi.>']);
    case 'admin':
      // No `allow_responses`: publishing anywhere covers replies, and the server would keep a
      // reply permission for every message delivered with a reply subject (every JetStream
      // message) for its whole ttl, pruning that list on each delivery: a read of the stream
      // slowed from 127,000 to 3,600 messages/s after the first few thousand.
      return { pub: { allow: ['>'], deny: [] }, sub: { allow: ['>'], deny: [] } };
  }
}
