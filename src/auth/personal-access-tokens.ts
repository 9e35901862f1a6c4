import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { PierError } from '../errors.js';
import { findIdentityByTokenHash, type IdentityRow, insertToken } from '../identities/store.js';
import type { Queryable } from '../store/store.js';

/** Pier's personal access tokens look like Databricks ones: `dapi` + 32 hex digits. */
const PAT_PREFIX = 'dapi';

/** The longest lifetime a new token may ask for: 730 days (two years). */
const MAX_TOKEN_LIFETIME_SECONDS = 730 * 24 * 3600;

/**
 * Stored tokens are looked up by their SHA-256 (a unique index), never compared
 * as text: timing reveals at most a prefix of a hash, which helps no guess.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Creates a PAT for an identity; only its hash is stored, the plain token is returned once. */
export async function createPersonalAccessToken(
  db: Queryable,
  identityId: string,
  options: { comment?: string; lifetimeSeconds?: number } = {},
): Promise<{ token: string; tokenId: string; createdAt: Date; expiresAt: Date | null }> {
  if ((options.lifetimeSeconds ?? 0) > MAX_TOKEN_LIFETIME_SECONDS) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `lifetime_seconds must be at most ${MAX_TOKEN_LIFETIME_SECONDS} (730 days), got ${options.lifetimeSeconds}. Omit it, or pass -1, for a token that does not expire.`,
    );
  }
  const token = `${PAT_PREFIX}${randomBytes(16).toString('hex')}`;
  const tokenId = randomUUID().replaceAll('-', '');
  const expiresAt =
    options.lifetimeSeconds && options.lifetimeSeconds > 0
      ? new Date(Date.now() + options.lifetimeSeconds * 1000)
      : undefined;
  const row = await insertToken(db, {
    tokenId,
    identityId,
    hash: hashToken(token),
    comment: options.comment,
    expiresAt,
  });
  return { token, tokenId, createdAt: row.created_at, expiresAt: row.expires_at };
}

/** The identity behind an `Authorization: Bearer …` header, or an UNAUTHENTICATED error. */
export async function authenticateBearer(
  db: Queryable,
  authorization: string | undefined,
): Promise<IdentityRow> {
  if (!authorization) {
    throw new PierError(
      'UNAUTHENTICATED',
      'No credentials were sent. Set DATABRICKS_TOKEN (see `pier status -o env`) or send an Authorization: Bearer header.',
    );
  }
  const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
  if (!match) {
    throw new PierError('UNAUTHENTICATED', 'The Authorization header must be "Bearer <token>".');
  }
  const identity = await findIdentityByTokenHash(db, hashToken(match[1]));
  if (!identity?.active) {
    throw new PierError(
      'UNAUTHENTICATED',
      'Invalid access token: it is unknown, revoked or expired. Create a new one with `pier status -o env` (admin) or POST /api/2.0/token/create.',
    );
  }
  return identity;
}
