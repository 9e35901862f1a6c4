import { PierClientError } from './errors.js';
import type { WorkspaceApi } from './workspace-api.js';

/** The fields of a database instance the pool needs. */
export interface InstanceEndpoint {
  name: string;
  readWriteDns: string;
}

/**
 * `GET /api/2.0/database/instances/{name}`: where the instance takes
 * connections. A stopped instance has no address; that is a configuration
 * problem, said as such.
 */
export async function instanceEndpoint(api: WorkspaceApi, name: string): Promise<InstanceEndpoint> {
  const body = await api.request('GET', `/api/2.0/database/instances/${encodeURIComponent(name)}`);
  if (typeof body.read_write_dns !== 'string' || !body.read_write_dns) {
    throw new PierClientError(
      'configuration',
      `Database instance '${name}' has no read_write_dns (state ${String(body.state)}); start it with \`databricks database start-database-instance ${name}\`.`,
    );
  }
  return { name, readWriteDns: body.read_write_dns };
}

/**
 * The instance whose `read_write_dns` is `host` (what an app's `PGHOST`
 * holds), found by listing the instances the caller can see.
 */
export async function instanceNameForHost(api: WorkspaceApi, host: string): Promise<string> {
  let pageToken: string | undefined;
  do {
    const query = pageToken ? `?page_token=${encodeURIComponent(pageToken)}` : '';
    const body = await api.request<{
      database_instances?: { name: string; read_write_dns?: string }[];
      next_page_token?: string;
    }>('GET', `/api/2.0/database/instances${query}`);
    const match = body.database_instances?.find((instance) => instance.read_write_dns === host);
    if (match) return match.name;
    pageToken = body.next_page_token || undefined;
  } while (pageToken);
  throw new PierClientError(
    'configuration',
    `No database instance visible to you at ${api.host} has read_write_dns ${host}; pass instanceName.`,
  );
}

/** The caller's user name (SCIM `Me`), which is their Postgres role on Lakebase. */
export async function currentUserName(api: WorkspaceApi): Promise<string> {
  const me = await api.request('GET', '/api/2.0/preview/scim/v2/Me');
  if (typeof me.userName !== 'string') {
    throw new PierClientError('api', `${api.host} answered SCIM Me without userName.`);
  }
  return me.userName;
}
