import crypto from 'node:crypto';

/**
 * Login sessions: salt-api's session id, which is the token a client sends back (`X-Auth-Token`,
 * the `session_id` cookie, `?token=`): 40 hex characters from 20 random bytes. Only the
 * token's SHA-256 is kept, so a memory dump or a log cannot be replayed as a login. A session
 * ends at `expire` (Salt's `token_expire` after the login, not sliding) or at logout.
 */
export interface Session {
  user: string;
  eauth: string;
  /** Epoch seconds, as Salt's token. */
  start: number;
  expire: number;
}

const TOKEN = /^[0-9a-f]{40}$/i;

const digest = (token: string) => crypto.createHash('sha256').update(token.toLowerCase()).digest('hex');

export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly ttlSeconds: number,
    private readonly now: () => number = () => Date.now() / 1000,
  ) {}

  /** A new session for the user; the token is returned once and never stored. */
  create(user: string, eauth: string): { token: string; session: Session } {
    this.sweep();
    const token = crypto.randomBytes(20).toString('hex');
    const start = this.now();
    const session = { user, eauth, start, expire: start + this.ttlSeconds };
    this.sessions.set(digest(token), session);
    return { token, session };
  }

  /** The live session of a token, or undefined (unknown, malformed, expired or logged out). */
  get(token: string | undefined): Session | undefined {
    if (token === undefined || !TOKEN.test(token)) return undefined;
    const key = digest(token);
    const session = this.sessions.get(key);
    if (session === undefined) return undefined;
    if (session.expire <= this.now()) {
      this.sessions.delete(key);
      return undefined;
    }
    return session;
  }

  /** Logout: the token no longer works. */
  delete(token: string): void {
    this.sessions.delete(digest(token));
  }

  /** Drops expired sessions (at each login, so the map cannot grow without bound). */
  private sweep(): void {
    const now = this.now();
    for (const [k, s] of this.sessions) if (s.expire <= now) this.sessions.delete(k);
  }
}
