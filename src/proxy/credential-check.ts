import type { JWK } from 'jose';
import {
  type DatabaseCredentialClaims,
  type JsonWebKeySet,
  verifyDatabaseCredential,
} from '../auth/credentials.js';
import type { PasswordCheck } from './directory.js';

/**
 * The PasswordCheck for database credentials signed by Pier's keys.
 * Verified tokens are remembered (bounded, until they expire or their key
 * leaves the set), so a client reconnecting with the same token skips the
 * ECDSA verification.
 *
 * @example
 * const passwords = credentialPasswordCheck({ publicKeys: () => publicJwks(store.signingKeys()) });
 */
export function credentialPasswordCheck(options: {
  publicKeys: () => JsonWebKeySet | readonly JWK[];
  issuer?: string;
  now?: () => Date;
  cacheSize?: number;
}): PasswordCheck {
  const now = options.now ?? (() => new Date());
  const cacheSize = options.cacheSize ?? 10_000;
  const verified = new Map<string, { claims: DatabaseCredentialClaims; kid: string | undefined }>();

  async function claimsOf(token: string) {
    const keys = options.publicKeys();
    const list = Array.isArray(keys) ? keys : (keys as JsonWebKeySet).keys;
    const cached = verified.get(token);
    if (cached) {
      const keyStillPublished = list.some((key: JWK) => key.kid === cached.kid);
      if (keyStillPublished && cached.claims.exp * 1000 > now().getTime())
        return { ok: true as const, claims: cached.claims };
      verified.delete(token);
    }
    const result = await verifyDatabaseCredential(token, list, { now: now(), issuer: options.issuer });
    if (result.ok) {
      if (verified.size >= cacheSize) verified.delete(verified.keys().next().value as string);
      verified.set(token, { claims: result.claims, kid: kidOf(token) });
    }
    return result;
  }

  return {
    async verify(password, user) {
      const result = await claimsOf(password);
      if (!result.ok) return { ok: false, reason: result.reason, message: result.message };
      if (result.claims.sub !== user) {
        return {
          ok: false,
          reason: 'wrong_user',
          message: `the database credential belongs to "${result.claims.sub}", not "${user}"; connect with user=${result.claims.sub} or generate a credential as ${user}.`,
        };
      }
      return { ok: true, audience: result.claims.aud };
    },
  };
}

function kidOf(token: string): string | undefined {
  try {
    const header = JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8')) as {
      kid?: string;
    };
    return header.kid;
  } catch {
    return undefined;
  }
}
