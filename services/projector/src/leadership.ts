import pg from 'pg';
import type { Logger } from '@jobledger/runtime';

/**
 * One projector applies, any other waits: the one that applies holds a PostgreSQL session-level
 * advisory lock named after its consumer (the checkpoint's name). A standby polls for the lock
 * and takes over as soon as the holder's session ends — a stop, a crash, a kill -9 (the server
 * ends the session when the connection drops), within about a poll interval.
 */
export interface Leadership {
  /** Settles when the lock is held (true), or false if stopped while waiting. */
  readonly acquired: Promise<boolean>;
  /** Rejects if the session holding the lock is lost: the caller must stop applying at once. */
  readonly lost: Promise<never>;
  /** Stops waiting, or releases the lock (ends the session). */
  release(): Promise<void>;
}

/** The lost session, or a failure to reach the database while waiting (retryable: restart). */
export class LeadershipLostError extends Error {
  override readonly name = 'LeadershipLostError';
  readonly retryable = true;
}

// Two keys: the first says "jobledger projector", the second is the consumer name's hash.
const LOCK_SQL = "SELECT pg_try_advisory_lock(hashtext('jobledger.projector'), hashtext($1)) AS ok";

export function acquireLeadership(databaseUrl: string, consumer: string, log: Logger, pollMs = 1_000): Leadership {
  let stopped = false;
  let client: pg.Client | undefined;
  let rejectLost!: (err: Error) => void;
  const lost = new Promise<never>((_, reject) => (rejectLost = reject));
  lost.catch(() => undefined);
  let wake: (() => void) | undefined;

  const acquired = (async () => {
    client = new pg.Client({ connectionString: databaseUrl, application_name: `jobledger-projector-lock-${consumer}` });
    client.on('error', (err) => {
      if (!stopped) rejectLost(new LeadershipLostError('the session holding the projector lock was lost', { cause: err }));
    });
    client.on('end', () => {
      if (!stopped) rejectLost(new LeadershipLostError('the session holding the projector lock ended'));
    });
    await client.connect();
    let said = false;
    while (!stopped) {
      const { rows } = await client.query<{ ok: boolean }>(LOCK_SQL, [consumer]);
      if (rows[0]?.ok) {
        if (said) log.info({ consumer }, 'standby: the lock is ours, taking over');
        return true;
      }
      if (!said) {
        log.info({ consumer }, 'standby: another projector applies the ledger; waiting to take over');
        said = true;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, pollMs).unref();
      });
    }
    return false;
  })();
  acquired.catch(() => undefined);

  return {
    acquired,
    lost,
    release: async () => {
      stopped = true;
      wake?.();
      await acquired.catch(() => undefined);
      await client?.end().catch(() => undefined);
    },
  };
}
