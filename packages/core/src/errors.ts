/** Error codes shared by the services, each with whether a retry can help. */
export const ErrorCodes = {
  Authorization: 'AUTHORIZATION',
  Authentication: 'AUTHENTICATION',
  Validation: 'VALIDATION',
  NoMinions: 'NO_MINIONS',
  Unavailable: 'UNAVAILABLE',
  Config: 'CONFIG',
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class LedgerError extends Error {
  override name = 'LedgerError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryable?: boolean } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** Salt's texts, word for word. */
export const SaltTexts = {
  noMinionsMatched: 'No minions matched the target. No command was sent, no jid was assigned.',
  noReturnReceived: 'ERROR: No return received',
  nonZeroExit: 'ERROR: Minions returned with non-zero exit code',
  notAvailable: (fun: string) => `'${fun}' is not available.`,
  noResponse: (jid: string, lookupCommand = 'jobledger runner jobs.lookup_jid') =>
    `Minion did not return. [No response]\nThe minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n\n${lookupCommand} ${jid}`,
  executing: (jid: string) => `Executing job with jid ${jid}`,
  asyncJid: (jid: string) => `Executed command with job ID: ${jid}`,
} as const;
