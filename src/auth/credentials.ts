import { randomUUID } from 'node:crypto';
import {
  decodeJwt,
  decodeProtectedHeader,
  errors,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from 'jose';

/**
 * Database credentials: short-lived JWTs a user presents as their Postgres
 * password. The subject is the user name, the audience the uids of the
 * instances the token opens, the issuer a configurable string. Tokens are
 * signed with ES256; each signing key has a `kid`, and verification accepts
 * any key of the published set, so keys rotate without breaking live tokens.
 * Storing keys is the caller's job: the control plane keeps them in the store,
 * private halves sealed by the master key (access/signing-keys-store.ts).
 * Issuing is access/credentials.ts; verifying, proxy/credential-check.ts.
 */

const CREDENTIAL_ALGORITHM = 'ES256';
export const DEFAULT_ISSUER = 'pier';

/** One signing key. `privateJwk` is a secret: never log it or send it anywhere. */
export interface SigningKey {
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
  /** RFC3339 */
  createdAt: string;
}

/** A published JSON Web Key Set: the public halves of every key tokens may be signed with. */
export interface JsonWebKeySet {
  keys: JWK[];
}

export interface DatabaseCredential {
  token: string;
  /** RFC3339, as the Databricks API returns it. */
  expiration_time: string;
}

export interface DatabaseCredentialClaims {
  /** The Postgres user the token logs in as. */
  sub: string;
  /** Instance uids the token is valid for. */
  aud: string[];
  iss: string;
  iat: number;
  exp: number;
  jti: string;
  /** The workspace identity's id: a later identity of the same name is another subject. */
  identity_id?: string;
  /** Set on OAuth access tokens (`all-apis`): they also authorise REST calls. */
  scope?: string;
}

type CredentialFailureReason =
  | 'malformed'
  | 'unknown_kid'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_issuer';

/** Why a token was refused; `message` is safe to show the token's holder. */
interface CredentialFailure {
  ok: false;
  reason: CredentialFailureReason;
  message: string;
  /** Set when `reason` is 'expired'. RFC3339. */
  expiredAt?: string;
}

export type CredentialVerification = { ok: true; claims: DatabaseCredentialClaims } | CredentialFailure;

/**
 * Creates a new ES256 signing key.
 *
 * @example
 * const key = await generateSigningKey();
 * await insertSigningKey(tx, masterKey, key); // sealed in the store (access/signing-keys-store.ts)
 */
export async function generateSigningKey(now: Date = new Date()): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(CREDENTIAL_ALGORITHM, { extractable: true });
  const kid = randomUUID();
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: CREDENTIAL_ALGORITHM, use: 'sig' };
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: CREDENTIAL_ALGORITHM, use: 'sig' };
  return { kid, privateJwk, publicJwk, createdAt: now.toISOString() };
}

/** The JWKS to publish (e.g. at `/oidc/v1/keys`): public halves only. */
export function publicJwks(keys: readonly SigningKey[]): JsonWebKeySet {
  return { keys: keys.map((key) => key.publicJwk) };
}

/**
 * Signs a database credential for `subject`, valid for the given instances
 * for `ttlSeconds`.
 *
 * @example
 * const { token, expiration_time } = await issueDatabaseCredential(key, {
 *   subject: 'alice@example.com', instanceUids: [instance.uid], ttlSeconds: 3600,
 * });
 */
export async function issueDatabaseCredential(
  key: SigningKey,
  options: {
    subject: string;
    identityId?: string;
    instanceUids: string[];
    ttlSeconds: number;
    now?: Date;
    issuer?: string;
    /** An OAuth scope (`all-apis`): makes the credential an access token for the REST API too. */
    scope?: string;
  },
): Promise<DatabaseCredential> {
  if (options.instanceUids.length === 0) throw new Error('A database credential needs at least one instance');
  if (!(options.ttlSeconds > 0)) throw new Error('ttlSeconds must be positive');
  const issuedAt = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const expiresAt = issuedAt + Math.floor(options.ttlSeconds);
  const token = await new SignJWT({
    ...(options.identityId ? { identity_id: options.identityId } : {}),
    ...(options.scope ? { scope: options.scope } : {}),
  })
    .setProtectedHeader({ alg: CREDENTIAL_ALGORITHM, kid: key.kid, typ: 'JWT' })
    .setSubject(options.subject)
    .setAudience(options.instanceUids)
    .setIssuer(options.issuer ?? DEFAULT_ISSUER)
    .setIssuedAt(issuedAt)
    .setExpirationTime(expiresAt)
    .setJti(randomUUID())
    .sign(await importKey(key.privateJwk));
  return { token, expiration_time: new Date(expiresAt * 1000).toISOString() };
}

/**
 * Checks a token's signature (against any key in `publicKeys` with its
 * `kid`), expiry and issuer. Audience and subject are the caller's to check:
 * they depend on which instance and user the token is presented for.
 */
export async function verifyDatabaseCredential(
  token: string,
  publicKeys: JsonWebKeySet | readonly JWK[],
  options: { now?: Date; issuer?: string } = {},
): Promise<CredentialVerification> {
  let kid: string | undefined;
  let payload: JWTPayload;
  try {
    kid = decodeProtectedHeader(token).kid;
    payload = decodeJwt(token);
  } catch {
    return failure('malformed', 'The password is not a database credential (not a well-formed JWT).');
  }
  const keys = Array.isArray(publicKeys) ? publicKeys : (publicKeys as JsonWebKeySet).keys;
  const jwk = keys.find((candidate) => candidate.kid === kid);
  if (!jwk) {
    return failure(
      'unknown_kid',
      `The credential was signed with a key this server does not know (kid ${JSON.stringify(kid ?? null)}); it may come from another Pier or a retired key.`,
    );
  }
  const now = options.now ?? new Date();
  try {
    await jwtVerify(token, await importKey(jwk), {
      algorithms: [CREDENTIAL_ALGORITHM],
      issuer: options.issuer ?? DEFAULT_ISSUER,
      currentDate: now,
      requiredClaims: ['sub', 'aud', 'exp'],
    });
  } catch (error) {
    if (error instanceof errors.JWTExpired) {
      const expiredAt = new Date(Number(payload.exp) * 1000).toISOString();
      return { ...failure('expired', `The credential expired at ${expiredAt}.`), expiredAt };
    }
    if (error instanceof errors.JWSSignatureVerificationFailed) {
      return failure(
        'bad_signature',
        'The credential signature is invalid (the token was altered or forged).',
      );
    }
    if (error instanceof errors.JWTClaimValidationFailed) {
      if (error.claim === 'iss')
        return failure('wrong_issuer', 'The credential was issued by another server.');
      if (error.claim === 'nbf' || error.claim === 'iat') {
        return failure('not_yet_valid', 'The credential is not valid yet (check the clock).');
      }
    }
    return failure('malformed', 'The password is not a valid database credential.');
  }
  const claims = toClaims(payload);
  if (!claims) return failure('malformed', 'The credential lacks a subject or audience.');
  return { ok: true, claims };
}

function toClaims(payload: JWTPayload): DatabaseCredentialClaims | undefined {
  const aud = typeof payload.aud === 'string' ? [payload.aud] : payload.aud;
  if (typeof payload.sub !== 'string' || !Array.isArray(aud) || aud.length === 0) return undefined;
  return {
    sub: payload.sub,
    aud,
    iss: String(payload.iss),
    iat: Number(payload.iat),
    exp: Number(payload.exp),
    jti: String(payload.jti ?? ''),
    ...(typeof payload.identity_id === 'string' ? { identity_id: payload.identity_id } : {}),
    ...(typeof payload.scope === 'string' ? { scope: payload.scope } : {}),
  };
}

function failure(reason: CredentialFailureReason, message: string): CredentialFailure {
  return { ok: false, reason, message };
}

// Importing a JWK costs more than verifying with it; keys are few and long-lived.
const importedKeys = new Map<string, Promise<CryptoKey | Uint8Array>>();

function importKey(jwk: JWK): Promise<CryptoKey | Uint8Array> {
  const cacheKey = `${jwk.kid}|${jwk.x}|${jwk.y}|${jwk.d ? 'private' : 'public'}`;
  let imported = importedKeys.get(cacheKey);
  if (!imported) {
    if (importedKeys.size > 256) importedKeys.clear();
    imported = importJWK(jwk, CREDENTIAL_ALGORITHM);
    importedKeys.set(cacheKey, imported);
  }
  return imported;
}
