import type { CredentialSource } from './credential-source.js';
import { PierClientError } from './errors.js';
import type { WorkspaceApi } from './workspace-api.js';

/**
 * Lakebase Autoscaling: database credentials from `POST
 * /api/2.0/postgres/credentials {endpoint}` (`{token, expire_time}`), for
 * an endpoint named `projects/<p>/branches/<b>/endpoints/<e>`.
 *
 * @example
 * const source = endpointCredentialSource(api, 'projects/shop/branches/production/endpoints/primary');
 */
export function endpointCredentialSource(api: WorkspaceApi, endpoint: string): CredentialSource {
  return {
    description: `endpoint credentials for ${endpoint} from ${api.host} (${api.source})`,
    async fetchCredential(signal) {
      const body = await api.request('POST', '/api/2.0/postgres/credentials', { body: { endpoint }, signal });
      const expiresAt = Date.parse(String(body.expire_time));
      if (typeof body.token !== 'string' || Number.isNaN(expiresAt)) {
        throw new PierClientError(
          'api',
          `${api.host} answered POST /api/2.0/postgres/credentials without token and expire_time.`,
        );
      }
      return { token: body.token, expiresAt };
    },
  };
}

/** `GET /api/2.0/postgres/{endpoint}`: the host clients connect to (`status.hosts.host`). */
export async function endpointHost(api: WorkspaceApi, endpoint: string): Promise<string> {
  const body = await api.request<{ status?: { hosts?: { host?: string } } }>(
    'GET',
    `/api/2.0/postgres/${endpoint}`,
  );
  const host = body.status?.hosts?.host;
  if (!host)
    throw new PierClientError('configuration', `Endpoint ${endpoint} has no host (status.hosts.host).`);
  return host;
}
