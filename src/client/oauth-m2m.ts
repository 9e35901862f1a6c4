import type { Credential, CredentialSource } from './credential-source.js';
import { PierClientError } from './errors.js';
import { readJsonResponse, requestTimeout } from './http.js';

/**
 * A service principal's OAuth access token (client credentials grant,
 * `scope=all-apis`) from the workspace's `/oidc/v1/token`: what a Databricks
 * App authenticates with (`DATABRICKS_CLIENT_ID`, `DATABRICKS_CLIENT_SECRET`).
 * The token serves both as the REST bearer and as the Postgres password.
 * The client secret travels in the Authorization header (HTTP Basic), as the
 * Databricks SDKs send it, never in a URL.
 *
 * @example
 * const source = oauthM2MSource({ host: 'https://my.cloud.databricks.com', clientId, clientSecret });
 * const { token, expiresAt } = await source.fetchCredential();
 */
export function oauthM2MSource(options: {
  host: string;
  clientId: string;
  clientSecret: string;
  scope?: string;
}): CredentialSource {
  const tokenUrl = new URL('/oidc/v1/token', `${options.host}/`);
  const basic = Buffer.from(
    `${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`,
  ).toString('base64');
  return {
    description: `OAuth token of ${options.clientId} from ${tokenUrl.origin}`,
    async fetchCredential(signal) {
      const requestedAt = Date.now();
      let response: Response;
      try {
        response = await fetch(tokenUrl, {
          method: 'POST',
          headers: {
            authorization: `Basic ${basic}`,
            'content-type': 'application/x-www-form-urlencoded',
            accept: 'application/json',
          },
          body: new URLSearchParams({ grant_type: 'client_credentials', scope: options.scope ?? 'all-apis' }),
          signal: requestTimeout(signal),
        });
      } catch (cause) {
        throw new PierClientError('unreachable', `Cannot reach ${tokenUrl.origin}: ${reason(cause)}.`, {
          cause,
        });
      }
      const body = await readJsonResponse(response, `POST ${tokenUrl.pathname}`);
      const token = body.access_token;
      const expiresIn = Number(body.expires_in);
      if (typeof token !== 'string' || !(expiresIn > 0)) {
        throw new PierClientError(
          'api',
          `${tokenUrl.origin}/oidc/v1/token answered without access_token and expires_in.`,
          { status: response.status },
        );
      }
      // expires_in counts from when the server answered; counting from before the
      // request makes the clocks of client and server irrelevant and errs early.
      return { token, expiresAt: requestedAt + expiresIn * 1000 } satisfies Credential;
    },
  };
}

function reason(cause: unknown): string {
  const error = cause as Error;
  return ((error.cause as Error | undefined)?.message ?? error.message) || String(cause);
}
