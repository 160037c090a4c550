import { ErrorCodes, LedgerError } from '@jobledger/core';

/** The request is malformed or asks for something the dispatcher does not do. Not retryable. */
export class PublishValidationError extends LedgerError {
  override name = 'PublishValidationError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(ErrorCodes.Validation, message, { ...options, retryable: false });
  }
}

/** The target matched no agent: nothing is appended and no jid is assigned. */
export class NoMinionsError extends LedgerError {
  override name = 'NoMinionsError';
  constructor(message: string) {
    super(ErrorCodes.NoMinions, message, { retryable: false });
  }
}

/** The ledger (stream or presence bucket) could not be reached in time. Retryable. */
export class LedgerUnavailableError extends LedgerError {
  override name = 'LedgerUnavailableError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(ErrorCodes.Unavailable, message, { ...options, retryable: true });
  }
}

/** JetStream refused the job.published: its store is full. Nothing was stored; retryable once it has room. */
export class LedgerStorageFullError extends LedgerError {
  override name = 'LedgerStorageFullError';
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(ErrorCodes.Unavailable, message, { ...options, retryable: true });
  }
}

/** The publish was refused by `publisher_acl` / `publisher_acl_blacklist`; the message is Salt's. Not retryable. */
export class PublishDeniedError extends LedgerError {
  override name = 'PublishDeniedError';
  constructor(kind: 'AuthorizationError' | 'AuthenticationError', message: string) {
    super(kind === 'AuthorizationError' ? ErrorCodes.Authorization : ErrorCodes.Authentication, message, { retryable: false });
  }
}
