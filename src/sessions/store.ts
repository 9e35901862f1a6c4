import type { IdentityRow } from '../identities/store.js';
import type { Queryable } from '../store/store.js';

/** A signed-in console session, as its identity and the CSRF token its state-changing calls must echo. */
export interface SessionRow {
  identity: IdentityRow;
  csrf_token: string;
  expires_at: Date;
}

/** The personal access token behind a sign-in: its id (a session ends with it) and when it expires. */
export async function findTokenByHash(
  db: Queryable,
  hash: string,
): Promise<{ token_id: string; expires_at: Date | null; identity: IdentityRow } | undefined> {
  const { rows } = await db.query<IdentityRow & { token_id: string; token_expires_at: Date | null }>(
    `SELECT t.token_id, t.expires_at AS token_expires_at,
            i.id::text, i.user_name, i.display_name, i.kind, i.is_admin, i.active, i.created_at
       FROM personal_access_tokens t JOIN identities i ON i.id = t.identity_id
      WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > now())`,
    [hash],
  );
  const row = rows[0];
  if (!row) return undefined;
  const { token_id, token_expires_at, ...identity } = row;
  return { token_id, expires_at: token_expires_at, identity };
}

export async function insertSession(
  db: Queryable,
  session: { idHash: string; tokenId: string; csrfToken: string; expiresAt: Date },
): Promise<void> {
  await db.query(
    `INSERT INTO console_sessions (id_hash, token_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4)`,
    [session.idHash, session.tokenId, session.csrfToken, session.expiresAt],
  );
}

/** A live session: not expired, its token not revoked or expired, its identity still there. */
export async function findSession(db: Queryable, idHash: string): Promise<SessionRow | undefined> {
  const { rows } = await db.query<IdentityRow & { csrf_token: string; session_expires_at: Date }>(
    `SELECT s.csrf_token, s.expires_at AS session_expires_at,
            i.id::text, i.user_name, i.display_name, i.kind, i.is_admin, i.active, i.created_at
       FROM console_sessions s
       JOIN personal_access_tokens t ON t.token_id = s.token_id
       JOIN identities i ON i.id = t.identity_id
      WHERE s.id_hash = $1 AND s.expires_at > now() AND (t.expires_at IS NULL OR t.expires_at > now())`,
    [idHash],
  );
  const row = rows[0];
  if (!row) return undefined;
  const { csrf_token, session_expires_at, ...identity } = row;
  return { identity, csrf_token, expires_at: session_expires_at };
}

export async function deleteSession(db: Queryable, idHash: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM console_sessions WHERE id_hash = $1', [idHash]);
  return (rowCount ?? 0) > 0;
}

export async function deleteExpiredSessions(db: Queryable): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM console_sessions WHERE expires_at <= now()');
  return rowCount ?? 0;
}
