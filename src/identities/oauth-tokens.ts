import { DEFAULT_ISSUER, issueDatabaseCredential, verifyDatabaseCredential } from '../auth/credentials.js';
import { authenticateBearer } from '../auth/personal-access-tokens.js';
import type { ControlContext } from '../control/context.js';
import { PierError } from '../errors.js';
import { listInstanceUidsOfPrincipal } from '../instances/permissions-store.js';
import { listAllInstanceUids } from '../instances/store.js';
import { OAUTH_SECRET_MAC_CONTEXT } from './oauth-secrets.js';
import { findClientBySecretHash } from './oauth-secrets-store.js';
import { findIdentityById, type IdentityRow } from './store.js';

/**
 * OAuth machine-to-machine: the client credentials grant of the token
 * endpoint (`POST /oidc/v1/token`, api/oauth.ts) and the access tokens it
 * issues. An access token is a JWT signed with the same keys as database
 * credentials (access/signing-keys.ts): subject the application id, the
 * identity's id, `scope: all-apis`, audience the instances the service
 * principal holds a permission on when the token is issued. It authorises
 * REST calls (authenticateCaller) and is a Postgres password for the role
 * named by the application id, with every check a database credential gets.
 */

/** The one scope Pier issues, as Databricks' workspace OAuth does for its APIs. */
export const ALL_APIS_SCOPE = 'all-apis';
/** The audience of a token whose service principal holds no instance yet: it opens none. */
const NO_INSTANCE_AUDIENCE = 'all-apis';

/** An OAuth error as RFC 6749 §5.2 answers it. */
export class OAuthError extends Error {
  constructor(
    readonly status: 400 | 401 | 429,
    readonly error: string,
    message: string,
    /** Seconds, for a 429's Retry-After. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** What the token endpoint answers (RFC 6749 §5.1). */
export interface AccessTokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
}

/**
 * Checks a client id and secret and issues an access token. An unknown
 * client, a wrong, deleted or expired secret, and an inactive service
 * principal all get the same OAuthError, after the same work: one keyed
 * hash and one indexed lookup.
 */
export async function clientCredentialsToken(
  ctx: ControlContext,
  client: { clientId: string; clientSecret: string; scope?: string },
): Promise<AccessTokenResponse> {
  const requested = (client.scope ?? ALL_APIS_SCOPE).split(/\s+/).filter(Boolean);
  if (requested.some((scope) => scope !== ALL_APIS_SCOPE)) {
    throw new OAuthError(400, 'invalid_scope', `Pier issues tokens for scope "${ALL_APIS_SCOPE}" only.`);
  }
  const hash = ctx.masterKey.mac(client.clientSecret, OAUTH_SECRET_MAC_CONTEXT);
  const principal = await findClientBySecretHash(ctx.store, client.clientId, hash);
  if (!principal) throw invalidClient();
  const instanceUids = await listInstanceUidsOfPrincipal(ctx.store, principal.user_name);
  const identity = await findIdentityById(ctx.store, principal.id);
  if (identity?.is_admin)
    instanceUids.splice(0, instanceUids.length, ...(await listAllInstanceUids(ctx.store)));
  const ttlSeconds = ctx.config.credentialTtlSeconds;
  const { token } = await issueDatabaseCredential(ctx.keys.current(), {
    subject: principal.user_name,
    identityId: principal.id,
    instanceUids: instanceUids.length > 0 ? instanceUids : [NO_INSTANCE_AUDIENCE],
    ttlSeconds,
    scope: ALL_APIS_SCOPE,
  });
  return { access_token: token, token_type: 'Bearer', expires_in: ttlSeconds, scope: ALL_APIS_SCOPE };
}

export function invalidClient(): OAuthError {
  return new OAuthError(
    401,
    'invalid_client',
    'Client authentication failed: the client id or secret is wrong, or the secret expired. Create a new secret with `pier service-principal-secrets create SERVICE_PRINCIPAL_ID`.',
  );
}

/**
 * The identity behind an `Authorization: Bearer …` header: a personal access
 * token, or an OAuth access token (a JWT Pier signed with scope all-apis)
 * whose identity still exists, is active and still has the token's name.
 */
export async function authenticateCaller(
  ctx: ControlContext,
  authorization: string | undefined,
): Promise<IdentityRow> {
  const bearer = /^Bearer\s+(\S+)$/i.exec(authorization?.trim() ?? '')?.[1];
  if (bearer?.split('.').length !== 3) return authenticateBearer(ctx.store, authorization);
  const verified = await verifyDatabaseCredential(bearer, ctx.keys.jwks(), { issuer: DEFAULT_ISSUER });
  const refused = (why: string) =>
    new PierError(
      'UNAUTHENTICATED',
      `Invalid access token: ${why} Get a new one from /oidc/v1/token with the service principal's client id and secret.`,
    );
  if (!verified.ok) throw refused(verified.message);
  const { claims } = verified;
  if (claims.scope !== ALL_APIS_SCOPE) {
    throw refused('it is a database credential (a Postgres password), not an OAuth access token.');
  }
  const identity = claims.identity_id ? await findIdentityById(ctx.store, claims.identity_id) : undefined;
  if (!identity?.active || identity.user_name.toLowerCase() !== claims.sub.toLowerCase()) {
    throw refused('the service principal it was issued to has been deleted or deactivated.');
  }
  return identity;
}

/**
 * Failed client authentications per source address, as the proxy counts
 * failed logins: `maxFailures` in `forgetAfterMs` and the address is refused
 * (429) until its last failure is that old. Checks in flight count as
 * failures, so parallel guesses cannot all run before the first is counted.
 * Bounded: past `maxEntries` addresses the oldest are forgotten.
 */
export class ClientAuthThrottle {
  private readonly failures = new Map<string, { count: number; lastAt: number }>();
  private readonly inFlight = new Map<string, number>();

  constructor(
    private readonly options = { maxFailures: 10, forgetAfterMs: 60_000, maxEntries: 10_000 },
    private readonly now: () => number = Date.now,
  ) {}

  /** Runs `check` for `address` unless it is throttled; a thrown OAuthError 401 counts as a failure. */
  async attempt<T>(address: string, check: () => Promise<T>): Promise<T> {
    const entry = this.failures.get(address);
    if (entry && this.now() - entry.lastAt > this.options.forgetAfterMs) this.failures.delete(address);
    const failed = this.failures.get(address)?.count ?? 0;
    const pending = this.inFlight.get(address) ?? 0;
    if (failed + pending >= this.options.maxFailures) {
      const lastAt = this.failures.get(address)?.lastAt ?? this.now();
      const wait = Math.max(1, Math.ceil((lastAt + this.options.forgetAfterMs - this.now()) / 1000));
      throw new OAuthError(
        429,
        'invalid_client',
        `Too many failed client authentications from ${address}. Try again in ${wait} s.`,
        wait,
      );
    }
    this.inFlight.set(address, pending + 1);
    try {
      return await check();
    } catch (error) {
      if (error instanceof OAuthError && error.status === 401) this.fail(address);
      throw error;
    } finally {
      const left = (this.inFlight.get(address) ?? 1) - 1;
      if (left > 0) this.inFlight.set(address, left);
      else this.inFlight.delete(address);
    }
  }

  private fail(address: string): void {
    const entry = this.failures.get(address) ?? { count: 0, lastAt: 0 };
    this.failures.delete(address); // re-insert: the map stays in order of last failure
    if (this.failures.size >= this.options.maxEntries) {
      this.failures.delete(this.failures.keys().next().value as string);
    }
    this.failures.set(address, { count: entry.count + 1, lastAt: this.now() });
  }
}
