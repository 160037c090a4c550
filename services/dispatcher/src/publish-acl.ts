import os from 'node:os';
import { nuid } from '@nats-io/transport-node';
import {
  AclTexts,
  authorizePublish,
  checkBlacklist,
  encodeEvent,
  msgIds,
  PUBLISH_DENIED_TAG,
  resolveTarget,
  saltStamp,
  subjects,
  type AclDecision,
  type MicrosClock,
} from '@jobledger/core';
import type { EventSigner, Ledger, Logger } from '@jobledger/runtime';
import { PublishDeniedError } from './errors.js';
import type { MasterConfig } from './master-config.js';
import type { AgentDirectory } from './presence.js';
import type { PublishJob } from './publish-request.js';

/** Users with root on the master: `root` and the user the dispatcher runs as (Salt's `user`). */
export function privilegedUsers(): Set<string> {
  const users = new Set(['root']);
  try {
    users.add(os.userInfo().username);
  } catch {
    /* no passwd entry: root only */
  }
  return users;
}

/**
 * Salt's publish authorisation for the CLI's user: the blacklist before the target is resolved,
 * the ACL after (it needs the expected minions). A refusal is appended to the ledger as a
 * `publish.denied` event, logged as Salt logs it, and thrown with Salt's reply text.
 */
export class PublishAcl {
  private readonly privileged = privilegedUsers();

  constructor(
    private readonly opts: { ledger: Ledger; agents: AgentDirectory; clock: MicrosClock; logger: Logger; signer?: EventSigner | undefined },
  ) {}

  /** Before target resolution: `publisher_acl_blacklist`, and a configuration that cannot be used. */
  async checkBlacklist(job: PublishJob, config: MasterConfig): Promise<void> {
    if (config.unusable !== undefined && !this.privileged.has(job.user)) {
      await this.deny(job, {
        allowed: false,
        error: 'AuthorizationError',
        reason: `the master configuration cannot be used (${config.unusable}); only root may publish until it is fixed`,
      });
    }
    const decision = checkBlacklist(config.acl, job.user, job.fun);
    if (!decision.allowed) await this.deny(job, decision);
  }

  /** After target resolution: `publisher_acl` for the user, function, arguments and minions. */
  async authorize(job: PublishJob, minions: readonly string[], config: MasterConfig): Promise<void> {
    const { agents } = await this.opts.agents.current();
    const decision = authorizePublish(
      config.acl,
      { user: job.user, fun: job.fun, arg: job.arg, minions },
      {
        privilegedUsers: this.privileged,
        compoundMinions: (expr) => {
          try {
            return resolveTarget(agents, expr, 'compound', { nodegroups: config.nodegroups }).minions;
          } catch {
            return [];
          }
        },
      },
    );
    if (!decision.allowed) await this.deny(job, decision);
  }

  private async deny(job: PublishJob, decision: Extract<AclDecision, { allowed: false }>): Promise<never> {
    const message = decision.error === 'AuthorizationError' ? AclTexts.authorization : AclTexts.authentication;
    const log = this.opts.logger.child({ component: 'publisher-acl' });
    if (decision.error === 'AuthorizationError' && decision.reason !== AclTexts.userAuthFailure)
      log.error({ user: job.user, fun: job.fun }, decision.reason);
    else log.warn({ user: job.user, fun: job.fun }, decision.reason);
    const event = {
      type: 'publish.denied' as const,
      tag: PUBLISH_DENIED_TAG,
      data: {
        user: job.user,
        fun: job.fun,
        tgt: job.tgt,
        tgt_type: job.tgt_type,
        error: decision.error,
        message,
        reason: decision.reason,
        _stamp: saltStamp(this.opts.clock()),
      },
    };
    try {
      const body = encodeEvent(event);
      const ack = await this.opts.ledger.js.publish(subjects.publishDenied, body, {
        msgID: msgIds.publishDenied(nuid.next()),
        ...(this.opts.signer ? { headers: this.opts.signer.headers(subjects.publishDenied, body) } : {}),
      });
      log.info({ seq: ack.seq }, 'denied publish recorded');
    } catch (err) {
      // The refusal stands either way; only its record is missing.
      log.error({ err }, 'could not record the denied publish in the ledger');
    }
    throw new PublishDeniedError(decision.error, message);
  }
}
