import type { JWK } from 'jose';
import type { SigningKey } from '../auth/credentials.js';
import type { Queryable } from './store.js';

interface SigningKeyRow {
  kid: string;
  private_jwk: JWK;
  public_jwk: JWK;
  created_at: Date;
  retired_at: Date | null;
}

export interface StoredSigningKey extends SigningKey {
  retiredAt?: string;
}

function toKey(row: SigningKeyRow): StoredSigningKey {
  return {
    kid: row.kid,
    privateJwk: row.private_jwk,
    publicJwk: row.public_jwk,
    createdAt: row.created_at.toISOString(),
    ...(row.retired_at ? { retiredAt: row.retired_at.toISOString() } : {}),
  };
}

/** Every key that may still verify a token, newest first. */
export async function listSigningKeys(db: Queryable): Promise<StoredSigningKey[]> {
  const { rows } = await db.query<SigningKeyRow>(
    'SELECT kid, private_jwk, public_jwk, created_at, retired_at FROM signing_keys ORDER BY created_at DESC',
  );
  return rows.map(toKey);
}

export async function insertSigningKey(db: Queryable, key: SigningKey): Promise<void> {
  await db.query(
    'INSERT INTO signing_keys (kid, private_jwk, public_jwk, created_at) VALUES ($1, $2, $3, $4)',
    [key.kid, JSON.stringify(key.privateJwk), JSON.stringify(key.publicJwk), key.createdAt],
  );
}

/** Retires every active key but `kid`; drops retired keys whose tokens have all expired. */
export async function rotateSigningKeys(
  db: Queryable,
  kid: string,
  tokenLifetimeSeconds: number,
): Promise<void> {
  await db.query('UPDATE signing_keys SET retired_at = now() WHERE kid <> $1 AND retired_at IS NULL', [kid]);
  await db.query(`DELETE FROM signing_keys WHERE retired_at < now() - make_interval(secs => $1)`, [
    tokenLifetimeSeconds,
  ]);
}
