/** A Postgres password and the moment (epoch milliseconds) it stops opening new sessions. */
export interface Credential {
  token: string;
  expiresAt: number;
}

/**
 * Where passwords come from. One call, one fresh credential; caching,
 * refreshing ahead of expiry and retrying are the pool's job
 * (credential-cache.ts), so a source stays a plain request.
 *
 * Two ship with the library: `databaseCredentialSource` (user auth: `POST
 * /api/2.0/database/credentials`) and `oauthM2MSource` (a service principal's
 * OAuth token from `/oidc/v1/token`, which Lakebase accepts as the password).
 * Pass your own as `credentialSource`.
 *
 * @example
 * const fixed: CredentialSource = {
 *   description: 'a token from the vault',
 *   fetchCredential: async () => ({ token: await vault.read('pg'), expiresAt: Date.now() + 3600_000 }),
 * };
 */
export interface CredentialSource {
  /** Says where credentials come from, for error messages. */
  readonly description: string;
  fetchCredential(signal?: AbortSignal): Promise<Credential>;
}
