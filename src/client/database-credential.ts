import { randomUUID } from 'node:crypto';
import type { CredentialSource } from './credential-source.js';
import { PierClientError } from './errors.js';
import type { WorkspaceApi } from './workspace-api.js';

/**
 * Database credentials from `POST /api/2.0/database/credentials` (the SDK's
 * `generateDatabaseCredential`), as the user or service principal the
 * workspace API authenticates. Each request carries a fresh `request_id`,
 * so a retried request that did reach the server is answered with the same
 * token instead of minting another.
 *
 * @example
 * const source = databaseCredentialSource(api, async () => ['order-mgmt-db']);
 */
export function databaseCredentialSource(
  api: WorkspaceApi,
  instanceNames: () => Promise<string[]>,
): CredentialSource {
  return {
    description: `database credentials from ${api.host} (${api.source})`,
    async fetchCredential(signal) {
      const body = await api.request('POST', '/api/2.0/database/credentials', {
        body: { request_id: randomUUID(), instance_names: await instanceNames() },
        signal,
      });
      const expiresAt = Date.parse(String(body.expiration_time));
      if (typeof body.token !== 'string' || Number.isNaN(expiresAt)) {
        throw new PierClientError(
          'api',
          `${api.host} answered POST /api/2.0/database/credentials without token and expiration_time.`,
        );
      }
      return { token: body.token, expiresAt };
    },
  };
}
