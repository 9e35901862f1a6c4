import { decodeProtectedHeader, type JWK } from 'jose';
import {
  type DatabaseCredentialClaims,
  type JsonWebKeySet,
  verifyDatabaseCredential,
} from '../auth/credentials.js';
import { reservedNameReason } from '../auth/reserved-names.js';
import type { PasswordCheck, PasswordVerdict } from './directory.js';

/** Postgres cuts longer user names to this many bytes, which could name another role. */
const MAX_ROLE_NAME_BYTES = 63;

/** Which identities may still log in; without it, only the token itself is checked. */
export interface IdentityCheck {
  isActive(identityId: string, userName: string): Promise<boolean>;
}

/**
 * The PasswordCheck for database credentials signed by Pier's keys.
 * Verified tokens are remembered (bounded, until they expire or their key
 * leaves the set), so a client reconnecting with the same token skips the
 * ECDSA verification. Reserved user names (`postgres`, `pg_*`, …) are refused
 * before any password is looked at; with `identities`, so is a credential
 * whose identity (named by id in the token) was deleted or deactivated.
 *
 * @example
 * const passwords = credentialPasswordCheck({ publicKeys: () => publicJwks(store.signingKeys()) });
 */
export function credentialPasswordCheck(options: {
  publicKeys: () => JsonWebKeySet | readonly JWK[];
  issuer?: string;
  now?: () => Date;
  cacheSize?: number;
  identities?: IdentityCheck;
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
      // Verified, so the header is a well-formed JWS header.
      verified.set(token, { claims: result.claims, kid: decodeProtectedHeader(token).kid });
    }
    return result;
  }

  return {
    async verify(password, user) {
      const refused = userNotAllowed(user);
      if (refused) return refused;
      const result = await claimsOf(password);
      if (!result.ok) return { ok: false, reason: result.reason, message: result.message };
      if (result.claims.sub !== user) {
        return {
          ok: false,
          reason: 'wrong_user',
          message: `the database credential belongs to "${result.claims.sub}", not "${user}"; connect with user=${result.claims.sub} or generate a credential as ${user}.`,
        };
      }
      if (options.identities) {
        const id = result.claims.identity_id;
        if (id === undefined || !(await options.identities.isActive(id, user))) {
          return {
            ok: false,
            reason: 'identity_revoked',
            message:
              id === undefined
                ? 'the database credential does not name the identity it was issued to (it predates this Pier version); generate a new one.'
                : `the database credential was issued to "${user}", an identity that has since been deleted or deactivated in the workspace; it no longer logs in.`,
          };
        }
      }
      return { ok: true, audience: result.claims.aud };
    },
  };
}

/** Names no client may log in as, whatever its password. */
function userNotAllowed(user: string): PasswordVerdict | undefined {
  const reserved = reservedNameReason(user);
  if (reserved) {
    return {
      ok: false,
      reason: 'user_not_allowed',
      message: `"${user}" is reserved (${reserved}) and cannot log in through Pier; connect as your own user.`,
    };
  }
  if (Buffer.byteLength(user) > MAX_ROLE_NAME_BYTES) {
    return {
      ok: false,
      reason: 'user_not_allowed',
      message: `the user name is longer than ${MAX_ROLE_NAME_BYTES} bytes, Postgres' limit for role names, so no role can carry it.`,
    };
  }
  return undefined;
}
