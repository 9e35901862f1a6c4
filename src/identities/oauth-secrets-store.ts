import type { Queryable } from '../store/store.js';
import type { IdentityRow } from './store.js';

export interface OAuthSecretRow {
  id: string;
  identity_id: string;
  created_at: Date;
  expires_at: Date | null;
}

const SECRET_COLUMNS = 'id::text, identity_id::text, created_at, expires_at';

export async function insertOAuthSecret(
  db: Queryable,
  secret: { id: string; identityId: string; hash: string; expiresAt?: Date },
): Promise<OAuthSecretRow> {
  const { rows } = await db.query<OAuthSecretRow>(
    `INSERT INTO oauth_secrets (id, identity_id, secret_hash, expires_at) VALUES ($1, $2, $3, $4)
     RETURNING ${SECRET_COLUMNS}`,
    [secret.id, secret.identityId, secret.hash, secret.expiresAt ?? null],
  );
  return rows[0];
}

export async function listOAuthSecrets(db: Queryable, identityId: string): Promise<OAuthSecretRow[]> {
  const { rows } = await db.query<OAuthSecretRow>(
    `SELECT ${SECRET_COLUMNS} FROM oauth_secrets WHERE identity_id = $1 ORDER BY created_at, id`,
    [identityId],
  );
  return rows;
}

export async function deleteOAuthSecret(db: Queryable, identityId: string, id: string): Promise<boolean> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return false; // no uuid, no row
  const { rowCount } = await db.query('DELETE FROM oauth_secrets WHERE identity_id = $1 AND id = $2', [
    identityId,
    id,
  ]);
  return (rowCount ?? 0) > 0;
}

/**
 * The active service principal whose application id is `clientId` and that
 * holds an unexpired secret with this hash: one indexed lookup, as costly
 * for an unknown client as for a wrong secret.
 */
export async function findClientBySecretHash(
  db: Queryable,
  clientId: string,
  hash: string,
): Promise<Pick<IdentityRow, 'id' | 'user_name'> | undefined> {
  const { rows } = await db.query<Pick<IdentityRow, 'id' | 'user_name'>>(
    `SELECT i.id::text, i.user_name
       FROM oauth_secrets s JOIN identities i ON i.id = s.identity_id
      WHERE s.secret_hash = $1 AND lower(i.user_name) = lower($2) AND i.kind = 'SERVICE_PRINCIPAL'
        AND i.active AND (s.expires_at IS NULL OR s.expires_at > now())`,
    [hash, clientId],
  );
  return rows[0];
}
