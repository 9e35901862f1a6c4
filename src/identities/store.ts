import type { Queryable } from '../store/store.js';

export interface IdentityRow {
  id: string;
  user_name: string;
  display_name: string | null;
  kind: 'USER' | 'SERVICE_PRINCIPAL';
  is_admin: boolean;
  active: boolean;
  created_at: Date;
  /** A service principal's application id (a UUID): its OAuth client id and Postgres role name, equal to user_name. */
  applicationId?: string;
}

export interface TokenRow {
  token_id: string;
  identity_id: string;
  comment: string | null;
  created_at: Date;
  expires_at: Date | null;
}

const IDENTITY_COLUMNS = 'id::text, user_name, display_name, kind, is_admin, active, created_at';

/** Rows as the store returns them, with a service principal's application id named. */
function named(row: IdentityRow | undefined): IdentityRow | undefined {
  if (row?.kind === 'SERVICE_PRINCIPAL') row.applicationId = row.user_name;
  return row;
}

export async function insertIdentity(
  db: Queryable,
  identity: { userName: string; displayName?: string; isAdmin?: boolean; kind?: IdentityRow['kind'] },
): Promise<IdentityRow> {
  const { rows } = await db.query<IdentityRow>(
    `INSERT INTO identities (user_name, display_name, is_admin, kind) VALUES ($1, $2, $3, $4) RETURNING ${IDENTITY_COLUMNS}`,
    [identity.userName, identity.displayName ?? null, identity.isAdmin ?? false, identity.kind ?? 'USER'],
  );
  return named(rows[0]) as IdentityRow;
}

export async function findIdentityById(
  db: Queryable,
  id: string,
  options: { lock?: boolean } = {},
): Promise<IdentityRow | undefined> {
  if (!/^\d{1,18}$/.test(id)) return undefined; // anything longer is no bigint id
  const { rows } = await db.query<IdentityRow>(
    `SELECT ${IDENTITY_COLUMNS} FROM identities WHERE id = $1${options.lock ? ' FOR UPDATE' : ''}`,
    [id],
  );
  return named(rows[0]);
}

export async function findIdentityByUserName(
  db: Queryable,
  userName: string,
): Promise<IdentityRow | undefined> {
  const { rows } = await db.query<IdentityRow>(
    `SELECT ${IDENTITY_COLUMNS} FROM identities WHERE lower(user_name) = lower($1)`,
    [userName],
  );
  return named(rows[0]);
}

/** One page of the identities of one kind (SCIM Users or ServicePrincipals), in id order. */
export async function listIdentities(
  db: Queryable,
  options: { offset: number; limit: number; kind: IdentityRow['kind'] },
): Promise<IdentityRow[]> {
  const { rows } = await db.query<IdentityRow>(
    `SELECT ${IDENTITY_COLUMNS} FROM identities WHERE kind = $3 ORDER BY id OFFSET $1 LIMIT $2`,
    [options.offset, options.limit, options.kind],
  );
  return rows.map((row) => named(row) as IdentityRow);
}

export async function countIdentities(db: Queryable, kind: IdentityRow['kind']): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM identities WHERE kind = $1',
    [kind],
  );
  return rows[0].n;
}

export async function deleteIdentity(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM identities WHERE id = $1', [id]);
  return (rowCount ?? 0) > 0;
}

export async function insertToken(
  db: Queryable,
  token: { tokenId: string; identityId: string; hash: string; comment?: string; expiresAt?: Date },
): Promise<TokenRow> {
  const { rows } = await db.query<TokenRow>(
    `INSERT INTO personal_access_tokens (token_id, identity_id, token_hash, comment, expires_at)
     VALUES ($1, $2, $3, $4, $5) RETURNING token_id, identity_id::text, comment, created_at, expires_at`,
    [token.tokenId, token.identityId, token.hash, token.comment ?? null, token.expiresAt ?? null],
  );
  return rows[0];
}

export async function findIdentityByTokenHash(db: Queryable, hash: string): Promise<IdentityRow | undefined> {
  const { rows } = await db.query<IdentityRow>(
    `SELECT i.id::text, i.user_name, i.display_name, i.kind, i.is_admin, i.active, i.created_at
       FROM personal_access_tokens t JOIN identities i ON i.id = t.identity_id
      WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > now())`,
    [hash],
  );
  return named(rows[0]);
}

export async function listTokens(db: Queryable, identityId: string): Promise<TokenRow[]> {
  const { rows } = await db.query<TokenRow>(
    `SELECT token_id, identity_id::text, comment, created_at, expires_at
       FROM personal_access_tokens WHERE identity_id = $1 ORDER BY created_at`,
    [identityId],
  );
  return rows;
}

export async function deleteToken(db: Queryable, identityId: string, tokenId: string): Promise<boolean> {
  const { rowCount } = await db.query(
    'DELETE FROM personal_access_tokens WHERE identity_id = $1 AND token_id = $2',
    [identityId, tokenId],
  );
  return (rowCount ?? 0) > 0;
}
