import { type IssuedCredential, refuseReservedCaller } from '../access/credentials.js';
import { issueDatabaseCredential } from '../auth/credentials.js';
import type { ControlContext } from '../control/context.js';
import { asObject } from '../control/validate.js';
import type { IdentityRow } from '../identities/store.js';
import { branchOf, endpointOf, projectForCaller } from './common.js';
import { formatDuration, invalid, parseDuration, parseTimestamp } from './fields.js';

const MIN_TTL_SECONDS = 300;
const MAX_TTL_SECONDS = 3600;

/** `projects/P/branches/B/endpoints/E` → its three ids. */
function parseEndpointName(name: unknown): [string, string, string] {
  const parts = typeof name === 'string' ? name.split('/') : [];
  if (parts.length !== 6 || parts[0] !== 'projects' || parts[2] !== 'branches' || parts[4] !== 'endpoints') {
    throw invalid(
      `endpoint must name an endpoint as projects/<project>/branches/<branch>/endpoints/<endpoint>, got ${JSON.stringify(name ?? '')}.`,
    );
  }
  return [parts[1], parts[3], parts[5]];
}

/**
 * `POST /api/2.0/postgres/credentials {endpoint, ttl | expire_time}`: a
 * short-lived token that logs the caller into that endpoint as their own
 * Postgres role, used as the password. Without `ttl` or `expire_time` it
 * lives as long as `pier up --credential-ttl` says (an hour by default).
 */
export async function generateEndpointCredential(
  ctx: ControlContext,
  caller: IdentityRow,
  input: unknown,
): Promise<IssuedCredential> {
  refuseReservedCaller(caller);
  const body = asObject(input, 'The request body');
  if (Array.isArray(body.claims) && body.claims.length > 0) {
    throw invalid('claims on Unity Catalog tables are not supported yet: leave claims out.');
  }
  if (body.group_name !== undefined && body.group_name !== null && body.group_name !== '') {
    throw invalid('group_name is not supported: Pier has no workspace groups. Leave it out.');
  }
  if (body.endpoint === undefined || body.endpoint === '') {
    throw invalid(`Field 'endpoint' is required, expected non-default value (not "")!`);
  }
  const [projectId, branchId, endpointId] = parseEndpointName(body.endpoint);
  const project = await projectForCaller(ctx.store, caller, projectId);
  const endpoint = await endpointOf(ctx.store, await branchOf(ctx.store, project, branchId), endpointId);
  let ttlSeconds = ctx.config.credentialTtlSeconds;
  if (
    body.ttl !== undefined &&
    body.ttl !== null &&
    body.expire_time !== undefined &&
    body.expire_time !== null
  ) {
    throw invalid('Set ttl or expire_time, not both.');
  }
  if (body.ttl !== undefined && body.ttl !== null) ttlSeconds = parseDuration(body.ttl, 'ttl');
  if (body.expire_time !== undefined && body.expire_time !== null) {
    ttlSeconds = Math.round((parseTimestamp(body.expire_time, 'expire_time').getTime() - Date.now()) / 1000);
  }
  if (body.ttl !== undefined || body.expire_time !== undefined) {
    if (ttlSeconds < MIN_TTL_SECONDS || ttlSeconds > MAX_TTL_SECONDS) {
      throw invalid(
        `A credential lives between ${formatDuration(MIN_TTL_SECONDS)} and ${formatDuration(MAX_TTL_SECONDS)}; ${body.ttl !== undefined ? `ttl ${String(body.ttl)}` : `expire_time ${String(body.expire_time)}`} asks for ${formatDuration(ttlSeconds)}.`,
      );
    }
  }
  const signed = await issueDatabaseCredential(ctx.keys.current(), {
    subject: caller.user_name,
    identityId: caller.id,
    instanceUids: [endpoint.instance_uid],
    ttlSeconds,
  });
  return { token: signed.token, expiresAt: new Date(signed.expiration_time) };
}
