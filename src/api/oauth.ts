import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { noteFailure } from '../failures.js';
import {
  ALL_APIS_SCOPE,
  ClientAuthThrottle,
  clientCredentialsToken,
  invalidClient,
  OAuthError,
} from '../identities/oauth-tokens.js';
import type { ApiEnv, RouteGroup } from './request.js';

const MAX_FORM_BYTES = 16 * 1024;

/**
 * The workspace's OAuth endpoints, where the Databricks SDKs look for them:
 * discovery at `/oidc/.well-known/oauth-authorization-server`, the token
 * endpoint `/oidc/v1/token` (client credentials grant only) and the JWKS
 * that verifies the tokens. Outside `/api`, so no bearer token is needed;
 * errors are OAuth's `{error, error_description}`, not the Databricks envelope.
 */
export const oauthRoutes: RouteGroup = (app, ctx) => {
  const throttle = new ClientAuthThrottle();
  const issuer = (c: Context<ApiEnv>) => `${new URL(c.req.url).origin}/oidc`;

  app.get('/oidc/.well-known/oauth-authorization-server', (c) => {
    const base = issuer(c);
    return c.json({
      issuer: base,
      authorization_endpoint: `${base}/v1/authorize`,
      token_endpoint: `${base}/v1/token`,
      jwks_uri: `${base}/v1/keys`,
      grant_types_supported: ['client_credentials'],
      response_types_supported: ['code'],
      scopes_supported: [ALL_APIS_SCOPE],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    });
  });

  app.get('/oidc/v1/keys', (c) => c.json(ctx.keys.jwks()));

  // Pier signs no one in interactively: the authorization code flow (U2M) is not served.
  app.get('/oidc/v1/authorize', (c) =>
    oauthError(
      c,
      new OAuthError(
        400,
        'unsupported_response_type',
        'Pier serves the client credentials grant only (service principals, oauth-m2m); use a personal access token for user access.',
      ),
    ),
  );

  app.post(
    '/oidc/v1/token',
    bodyLimit({
      maxSize: MAX_FORM_BYTES,
      onError: (c) =>
        oauthError(
          c,
          new OAuthError(400, 'invalid_request', `The request body is larger than ${MAX_FORM_BYTES} bytes.`),
        ),
    }),
    async (c) => {
      c.header('Cache-Control', 'no-store');
      c.header('Pragma', 'no-cache');
      try {
        const form = await readForm(c);
        if (form.get('grant_type') !== 'client_credentials') {
          throw new OAuthError(
            400,
            'unsupported_grant_type',
            `grant_type must be client_credentials, got ${JSON.stringify(form.get('grant_type') ?? null)}.`,
          );
        }
        const client = clientOf(c.req.header('authorization'), form);
        const address = remoteAddress(c);
        const token = await throttle.attempt(address, () =>
          clientCredentialsToken(ctx, { ...client, scope: form.get('scope') ?? undefined }),
        );
        return c.json(token);
      } catch (error) {
        if (error instanceof OAuthError) return oauthError(c, error);
        noteFailure('oauth.token', error);
        return oauthError(
          c,
          new OAuthError(400, 'server_error', 'The token could not be issued; try again.'),
        );
      }
    },
  );
};

/** The client's id and secret: HTTP Basic (RFC 6749 §2.3.1, form-encoded parts) or form fields. */
function clientOf(authorization: string | undefined, form: URLSearchParams) {
  const basic = /^Basic\s+(\S+)$/i.exec(authorization?.trim() ?? '')?.[1];
  if (basic) {
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw invalidClient();
    return {
      clientId: formDecode(decoded.slice(0, colon)),
      clientSecret: formDecode(decoded.slice(colon + 1)),
    };
  }
  const clientId = form.get('client_id');
  const clientSecret = form.get('client_secret');
  if (!clientId || !clientSecret) {
    throw new OAuthError(
      401,
      'invalid_client',
      'Send the client id and secret: HTTP Basic authentication, or client_id and client_secret form fields.',
    );
  }
  return { clientId, clientSecret };
}

function formDecode(part: string): string {
  try {
    return decodeURIComponent(part.replaceAll('+', ' '));
  } catch {
    return part;
  }
}

async function readForm(c: Context<ApiEnv>): Promise<URLSearchParams> {
  const type = c.req.header('content-type') ?? '';
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    throw new OAuthError(400, 'invalid_request', 'The body must be application/x-www-form-urlencoded.');
  }
  return new URLSearchParams(await c.req.text());
}

function remoteAddress(c: Context<ApiEnv>): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function oauthError(c: Context<ApiEnv>, error: OAuthError) {
  if (error.status === 401) c.header('WWW-Authenticate', 'Basic realm="pier"');
  if (error.retryAfter !== undefined) c.header('Retry-After', String(error.retryAfter));
  return c.json({ error: error.error, error_description: error.message }, error.status);
}
