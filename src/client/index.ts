/**
 * `pier/client`: a node-postgres pool for Lakebase Provisioned (on
 * Databricks or on Pier) whose password is a short-lived credential,
 * refreshed in the background. See docs/client.md.
 *
 * @example
 * import { createPool } from 'pier/client';
 * const pool = createPool({ instanceName: 'order-mgmt-db' });
 * await pool.query('SELECT 1');
 */
export type { CredentialRefreshError } from './credential-cache.js';
export { CredentialCache } from './credential-cache.js';
export type { Credential, CredentialSource } from './credential-source.js';
export { databaseCredentialSource } from './database-credential.js';
export { endpointCredentialSource } from './endpoint.js';
export { type ClientErrorKind, PierClientError } from './errors.js';
export { oauthM2MSource } from './oauth-m2m.js';
export { createPool, type PierPool, type PoolOptions } from './pool.js';
export type { Environment } from './profiles.js';
export type { SslMode } from './tls.js';
export { type WorkspaceApi, workspaceApi } from './workspace-api.js';
export {
  resolveWorkspaceAuth,
  type WorkspaceAuth,
  type WorkspaceCredentials,
} from './workspace-auth.js';
