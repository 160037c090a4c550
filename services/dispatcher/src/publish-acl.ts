import os from 'node:os';
import {
  AclTexts,
  authorizeEauthPublish,
  authorizePublish,
  checkBlacklist,
  eauthRules,
  EauthTexts,
  specCheck,
  resolveTarget,
  saltStamp,
  type AclDecision,
  type MicrosClock,
} from '@jobledger/core';
import { appendPublishDenied, type EventSigner, type Ledger, type Logger } from '@jobledger/runtime';
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

  /**
   * Before target resolution: `publisher_acl_blacklist`, and a configuration that cannot be
   * used. `eauth`: a user the HTTP API authenticated, never privileged whatever its name.
   */
  async checkBlacklist(job: PublishJob, config: MasterConfig, eauth?: string): Promise<void> {
    if (config.unusable !== undefined && (eauth !== undefined || !this.privileged.has(job.user))) {
      await this.deny(
        job,
        {
          allowed: false,
          error: 'AuthorizationError',
          reason: `the master configuration cannot be used (${config.unusable}); only root may publish until it is fixed`,
        },
        eauth,
      );
    }
    const decision = checkBlacklist(config.acl, job.user, job.fun);
    if (!decision.allowed) await this.deny(job, decision, eauth);
  }

  /** After target resolution, for a user of the HTTP API: its `external_auth` rules. */
  async authorizeEauth(job: PublishJob, minions: readonly string[], config: MasterConfig, eauth: string): Promise<void> {
    const backend = config.externalAuth[eauth];
    if (backend === undefined) {
      await this.deny(job, { allowed: false, error: 'AuthenticationError', reason: `the eauth backend ${eauth} is not configured` }, eauth);
      return;
    }
    const { agents } = await this.opts.agents.current();
    const decision = authorizeEauthPublish(
      config.acl,
      eauthRules(backend, job.user, [], config.permissiveAcl),
      { user: job.user, fun: job.fun, arg: job.arg, minions },
      { compoundMinions: (expr) => this.compoundMinions(agents, expr, config) },
    );
    if (!decision.allowed) await this.deny(job, decision, eauth);
  }

  /** After target resolution: `publisher_acl` for the user, function, arguments and minions. */
  async authorize(job: PublishJob, minions: readonly string[], config: MasterConfig): Promise<void> {
    const { agents } = await this.opts.agents.current();
    const decision = authorizePublish(
      config.acl,
      { user: job.user, fun: job.fun, arg: job.arg, minions },
      {
        privilegedUsers: this.privileged,
        compoundMinions: (expr) => this.compoundMinions(agents, expr, config),
      },
    );
    if (!decision.allowed) await this.deny(job, decision);
  }

  /**
   * A runner call from the HTTP API: Salt's `spec_check` on the user's eauth rules (`@runner`,
   * `@jobs`, …). The refusal's text, recorded as a denied attempt, or undefined when allowed.
   */
  async authorizeRunner(
    call: { user: string; fun: string; arg: readonly unknown[]; kwarg: Readonly<Record<string, unknown>> },
    config: MasterConfig,
    eauth: string,
  ): Promise<string | undefined> {
    const backend = config.externalAuth[eauth];
    const rules = backend === undefined || config.unusable !== undefined ? [] : eauthRules(backend, call.user, [], config.permissiveAcl);
    if (specCheck(rules, call.fun, 'runner', call.arg, call.kwarg)) return undefined;
    const message = EauthTexts.specDenied('token', call.user);
    const reason =
      backend === undefined
        ? `the eauth backend ${eauth} is not configured`
        : config.unusable !== undefined
          ? `the master configuration cannot be used (${config.unusable})`
          : `${call.user} may not run the runner ${call.fun}`;
    await this.record(
      { user: call.user, fun: `runner.${call.fun}`, tgt: '', tgt_type: 'glob' },
      'AuthenticationError',
      message,
      reason,
      eauth,
    );
    return message;
  }

  private compoundMinions(agents: Parameters<typeof resolveTarget>[0], expr: string, config: MasterConfig): string[] {
    try {
      return resolveTarget(agents, expr, 'compound', { nodegroups: config.nodegroups }).minions;
    } catch {
      return [];
    }
  }

  private async deny(job: PublishJob, decision: Extract<AclDecision, { allowed: false }>, eauth?: string): Promise<never> {
    const message = decision.error === 'AuthorizationError' ? AclTexts.authorization : AclTexts.authentication;
    await this.record(job, decision.error, message, decision.reason, eauth);
    throw new PublishDeniedError(decision.error, message);
  }

  /** Logs a refusal as Salt does and appends it to the ledger as a `publish.denied` event. */
  private async record(
    call: Pick<PublishJob, 'user' | 'fun' | 'tgt' | 'tgt_type'>,
    error: 'AuthorizationError' | 'AuthenticationError',
    message: string,
    reason: string,
    eauth: string | undefined,
  ): Promise<void> {
    const log = this.opts.logger.child({ component: 'publisher-acl' });
    if (error === 'AuthorizationError' && reason !== AclTexts.userAuthFailure) log.error({ user: call.user, fun: call.fun }, reason);
    else log.warn({ user: call.user, fun: call.fun }, reason);
    const data = {
      user: call.user,
      fun: call.fun,
      tgt: call.tgt,
      tgt_type: call.tgt_type,
      error,
      message,
      reason,
      ...(eauth !== undefined ? { eauth } : {}),
      _stamp: saltStamp(this.opts.clock()),
    };
    try {
      const seq = await appendPublishDenied(this.opts.ledger, this.opts.signer, data);
      log.info({ seq }, 'denied publish recorded');
    } catch (err) {
      // The refusal stands either way; only its record is missing.
      log.error({ err }, 'could not record the denied publish in the ledger');
    }
  }
}
