import { randomBytes, timingSafeEqual } from 'node:crypto';
import { hashToken } from '../auth/personal-access-tokens.js';
import { PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import type { Queryable } from '../store/store.js';
import {
  deleteExpiredSessions,
  deleteSession,
  findSession,
  findTokenByHash,
  insertSession,
  type SessionRow,
} from './store.js';

/**
 * Console sessions: a personal access token is exchanged once for a random
 * session id, which the browser keeps in an HttpOnly cookie (the token never
 * reaches the page's storage). The store holds only the id's SHA-256; a
 * session ends at sign-out, after SESSION_LIFETIME_MS, or with its token.
 */
const SESSION_LIFETIME_MS = 12 * 3600 * 1000;

/** The cookie that carries the session id. */
export const SESSION_COOKIE = 'pier_session';

/** The header a cookie-authenticated state-changing request must carry, holding the session's CSRF token. */
export const CSRF_HEADER = 'x-pier-csrf';

export interface SignedIn {
  sessionId: string;
  csrfToken: string;
  identity: IdentityRow;
  expiresAt: Date;
}

/** Exchanges a personal access token for a new session; UNAUTHENTICATED for an unknown, revoked or expired one. */
export async function signIn(db: Queryable, token: unknown): Promise<SignedIn> {
  if (typeof token !== 'string' || token.trim() === '') {
    throw new PierError('INVALID_PARAMETER_VALUE', 'Paste a personal access token (it starts with dapi).');
  }
  const found = await findTokenByHash(db, hashToken(token.trim()));
  if (!found?.identity.active) {
    throw new PierError(
      'UNAUTHENTICATED',
      'This token is unknown, revoked or expired. Create a new one with `pier status -o env` (admin) or POST /api/2.0/token/create.',
    );
  }
  const sessionId = randomBytes(32).toString('base64url');
  const csrfToken = randomBytes(24).toString('base64url');
  const cap = Date.now() + SESSION_LIFETIME_MS;
  const expiresAt = new Date(Math.min(cap, found.expires_at?.getTime() ?? cap));
  await deleteExpiredSessions(db);
  await insertSession(db, { idHash: hashToken(sessionId), tokenId: found.token_id, csrfToken, expiresAt });
  return { sessionId, csrfToken, identity: found.identity, expiresAt };
}

/** The live session behind a cookie value, or undefined. */
export async function findLiveSession(
  db: Queryable,
  sessionId: string | undefined,
): Promise<SessionRow | undefined> {
  if (!sessionId) return undefined;
  const session = await findSession(db, hashToken(sessionId));
  return session?.identity.active ? session : undefined;
}

/**
 * The identity of a cookie-authenticated API call. Reads pass on the cookie
 * (SameSite=Strict keeps other sites from sending it); a state-changing
 * method must also echo the session's CSRF token in `x-pier-csrf`.
 */
export async function authenticateSession(
  db: Queryable,
  sessionId: string,
  request: { method: string; csrfHeader: string | undefined },
): Promise<IdentityRow> {
  const session = await findLiveSession(db, sessionId);
  if (!session) {
    throw new PierError('UNAUTHENTICATED', 'Your console session has ended. Sign in again.');
  }
  if (!SAFE_METHODS.has(request.method) && !sameSecret(request.csrfHeader, session.csrf_token)) {
    throw new PierError(
      'PERMISSION_DENIED',
      `A state-changing request with the session cookie must send the session's CSRF token in ${CSRF_HEADER}.`,
    );
  }
  return session.identity;
}

/** Ends a session server-side; true if there was one. */
export async function signOut(db: Queryable, sessionId: string | undefined): Promise<boolean> {
  if (!sessionId) return false;
  return deleteSession(db, hashToken(sessionId));
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Compares secrets in constant time. */
function sameSecret(sent: string | undefined, expected: string): boolean {
  if (sent === undefined) return false;
  const a = Buffer.from(sent);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
