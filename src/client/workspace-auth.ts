import { PierClientError } from './errors.js';
import { type Environment, normaliseHost, profileNamed, readProfile } from './profiles.js';

/** A workspace and how REST calls authenticate: a personal access token, or an OAuth service principal (M2M). */
export type WorkspaceCredentials =
  | { host: string; token: string }
  | { host: string; clientId: string; clientSecret: string };

/** Resolved workspace credentials and where they came from (for error messages). */
export type WorkspaceAuth = WorkspaceCredentials & { source: string };

/**
 * Resolves the workspace and its credentials as the Databricks SDKs do:
 * `DATABRICKS_HOST` with `DATABRICKS_TOKEN` (user auth) or with
 * `DATABRICKS_CLIENT_ID`/`DATABRICKS_CLIENT_SECRET` (what Databricks Apps
 * inject), else a `~/.databrickscfg` profile (`profile`,
 * `DATABRICKS_CONFIG_PROFILE`, or DEFAULT) holding `token` or
 * `client_id`/`client_secret`. Environment values win over the profile's.
 *
 * @example
 * resolveWorkspaceAuth({ env: process.env }) // { host: 'https://…', token: 'dapi…', source: 'environment' }
 */
export function resolveWorkspaceAuth(options: { env: Environment; profile?: string }): WorkspaceAuth {
  const { env } = options;
  const fromEnv = authFrom(
    {
      host: env.DATABRICKS_HOST,
      token: env.DATABRICKS_TOKEN,
      client_id: env.DATABRICKS_CLIENT_ID,
      client_secret: env.DATABRICKS_CLIENT_SECRET,
    },
    'environment',
  );
  if (!profileNamed(options) && fromEnv) return fromEnv;

  const { name, fields: profile } = readProfile(options);
  const merged = authFrom(
    {
      host: env.DATABRICKS_HOST || profile?.host,
      token: env.DATABRICKS_TOKEN || profile?.token,
      client_id: env.DATABRICKS_CLIENT_ID || profile?.client_id,
      client_secret: env.DATABRICKS_CLIENT_SECRET || profile?.client_secret,
    },
    `profile ${name}`,
  );
  if (merged) return merged;
  throw new PierClientError(
    'configuration',
    'No workspace credentials: set DATABRICKS_HOST with DATABRICKS_TOKEN (on Pier: `eval "$(npx pier status -o env)"`) or with DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET, name a ~/.databrickscfg profile, or pass `workspace`.',
  );
}

function authFrom(
  fields: { host?: string; token?: string; client_id?: string; client_secret?: string },
  source: string,
): WorkspaceAuth | undefined {
  if (!fields.host) return undefined;
  const host = normaliseHost(fields.host);
  // A token names the user; it wins over a service principal configured beside it.
  if (fields.token) return { host, token: fields.token, source };
  if (fields.client_id && fields.client_secret)
    return { host, clientId: fields.client_id, clientSecret: fields.client_secret, source };
  return undefined;
}
