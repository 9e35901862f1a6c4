import type { Queryable } from './store.js';

export interface CredentialRequestRow {
  request_id: string;
  identity_id: string;
  instance_uids: string[];
  token: string;
  expires_at: Date;
}

export async function findCredentialRequest(
  db: Queryable,
  requestId: string,
): Promise<CredentialRequestRow | undefined> {
  const { rows } = await db.query<CredentialRequestRow>(
    `SELECT request_id, identity_id::text, instance_uids::text[], token, expires_at
       FROM credential_requests WHERE request_id = $1 FOR UPDATE`,
    [requestId],
  );
  return rows[0];
}

export async function saveCredentialRequest(db: Queryable, row: CredentialRequestRow): Promise<void> {
  await db.query(
    `INSERT INTO credential_requests (request_id, identity_id, instance_uids, token, expires_at)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (request_id) DO UPDATE SET instance_uids = excluded.instance_uids, token = excluded.token, expires_at = excluded.expires_at`,
    [row.request_id, row.identity_id, row.instance_uids, row.token, row.expires_at],
  );
}

/** Expired tokens are useless to replay; keep the table small. */
export async function purgeExpiredCredentialRequests(db: Queryable): Promise<void> {
  await db.query('DELETE FROM credential_requests WHERE expires_at < now()');
}
