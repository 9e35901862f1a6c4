import type { JWK } from 'jose';
import type { SigningKey } from '../auth/credentials.js';
import type { MasterKey, SealedSecret } from '../auth/master-key.js';
import type { Queryable } from '../store/store.js';

interface SigningKeyRow {
  kid: string;
  sealed_private_jwk: SealedSecret;
  public_jwk: JWK;
  created_at: Date;
  retired_at: Date | null;
}

export interface StoredSigningKey extends SigningKey {
  retiredAt?: string;
}

/** What a sealed private key is bound to: it opens in its own row only. */
const sealContext = (kid: string) => `signing_keys:${kid}`;

function toKey(row: SigningKeyRow, masterKey: MasterKey): StoredSigningKey {
  return {
    kid: row.kid,
    privateJwk: JSON.parse(masterKey.open(row.sealed_private_jwk, sealContext(row.kid))) as JWK,
    publicJwk: row.public_jwk,
    createdAt: row.created_at.toISOString(),
    ...(row.retired_at ? { retiredAt: row.retired_at.toISOString() } : {}),
  };
}

/** Every key that may still verify a token, newest first, private halves unsealed. */
export async function listSigningKeys(db: Queryable, masterKey: MasterKey): Promise<StoredSigningKey[]> {
  const { rows } = await db.query<SigningKeyRow>(
    `SELECT kid, sealed_private_jwk, public_jwk, created_at, retired_at FROM signing_keys
      WHERE sealed_private_jwk IS NOT NULL ORDER BY created_at DESC`,
  );
  return rows.map((row) => toKey(row, masterKey));
}

export async function insertSigningKey(db: Queryable, masterKey: MasterKey, key: SigningKey): Promise<void> {
  await db.query(
    'INSERT INTO signing_keys (kid, sealed_private_jwk, public_jwk, created_at) VALUES ($1, $2, $3, $4)',
    [
      key.kid,
      JSON.stringify(masterKey.seal(JSON.stringify(key.privateJwk), sealContext(key.kid))),
      JSON.stringify(key.publicJwk),
      key.createdAt,
    ],
  );
}

/**
 * Seals the private keys an older Pier stored in plain text, clearing the
 * plain copy. Returns how many it sealed. Safe to run on every start and from
 * several nodes at once (each row is locked while it is sealed).
 */
export async function sealPlaintextSigningKeys(db: Queryable, masterKey: MasterKey): Promise<number> {
  const { rows } = await db.query<{ kid: string; private_jwk: JWK }>(
    'SELECT kid, private_jwk FROM signing_keys WHERE private_jwk IS NOT NULL FOR UPDATE',
  );
  for (const row of rows) {
    await db.query('UPDATE signing_keys SET sealed_private_jwk = $2, private_jwk = NULL WHERE kid = $1', [
      row.kid,
      JSON.stringify(masterKey.seal(JSON.stringify(row.private_jwk), sealContext(row.kid))),
    ]);
  }
  return rows.length;
}

/**
 * The ids of every master key this store is bound to: the one recorded when
 * the store was first sealed, and any named by a sealed secret (normally the same one).
 */
export async function sealingMasterKeyIds(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT value->>'id' AS id FROM settings WHERE key = 'master_key'
     UNION SELECT sealed_private_jwk->>'key' FROM signing_keys WHERE sealed_private_jwk IS NOT NULL
     UNION SELECT sealed_token->>'key' FROM credential_requests`,
  );
  return rows.map((row) => row.id);
}

/** Binds the store to a master key (its id only), once. */
export async function recordMasterKeyId(db: Queryable, id: string): Promise<void> {
  await db.query(`INSERT INTO settings (key, value) VALUES ('master_key', $1) ON CONFLICT (key) DO NOTHING`, [
    JSON.stringify({ id }),
  ]);
}

/** Retires every active key but `kid`; drops retired keys whose tokens have all expired. */
export async function rotateSigningKeys(
  db: Queryable,
  kid: string,
  tokenLifetimeSeconds: number,
): Promise<void> {
  await db.query('UPDATE signing_keys SET retired_at = now() WHERE kid <> $1 AND retired_at IS NULL', [kid]);
  await dropRetiredSigningKeys(db, tokenLifetimeSeconds);
}

/** Drops retired keys whose tokens have all expired: nothing verifies against them any more. */
export async function dropRetiredSigningKeys(db: Queryable, tokenLifetimeSeconds: number): Promise<void> {
  await db.query(`DELETE FROM signing_keys WHERE retired_at < now() - make_interval(secs => $1)`, [
    tokenLifetimeSeconds,
  ]);
}
