import type { SealedSecret } from '../auth/master-key.js';
import type { Queryable } from '../store/store.js';

/** A credential kept for `request_id` retries. The token is sealed by the master key. */
export interface CredentialRequestRow {
  identity_id: string;
  request_id: string;
  instance_uids: string[];
  sealed_token: SealedSecret;
  expires_at: Date;
}

const COLUMNS = 'identity_id::text, request_id, instance_uids::text[], sealed_token, expires_at';

/** What a sealed token is bound to: it opens for its own caller and request id only. */
export function credentialSealContext(row: Pick<CredentialRequestRow, 'identity_id' | 'request_id'>): string {
  return `credential_requests:${row.identity_id}:${row.request_id}`;
}

/** The caller's own earlier request with this id, while its token is valid; request ids are per caller. */
export async function findCredentialRequest(
  db: Queryable,
  identityId: string,
  requestId: string,
): Promise<CredentialRequestRow | undefined> {
  const { rows } = await db.query<CredentialRequestRow>(
    `SELECT ${COLUMNS} FROM credential_requests WHERE identity_id = $1 AND request_id = $2 AND expires_at > now()`,
    [identityId, requestId],
  );
  return rows[0];
}

/**
 * Records a credential for (caller, request id), replacing only an expired
 * one. Returns false when a concurrent request of the same caller recorded a
 * valid one first: that one is the answer, read it with `findCredentialRequest`.
 */
export async function saveCredentialRequest(db: Queryable, row: CredentialRequestRow): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO credential_requests (identity_id, request_id, instance_uids, sealed_token, expires_at)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (identity_id, request_id) DO UPDATE
       SET instance_uids = excluded.instance_uids, sealed_token = excluded.sealed_token, expires_at = excluded.expires_at
       WHERE credential_requests.expires_at <= now()`,
    [row.identity_id, row.request_id, row.instance_uids, JSON.stringify(row.sealed_token), row.expires_at],
  );
  return (rowCount ?? 0) > 0;
}

/** Expired tokens are useless to replay; keep the table small. */
export async function purgeExpiredCredentialRequests(db: Queryable): Promise<void> {
  await db.query('DELETE FROM credential_requests WHERE expires_at < now()');
}
