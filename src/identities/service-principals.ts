import { randomUUID } from 'node:crypto';
import { reservedNameReason } from '../auth/reserved-names.js';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalBoolean, optionalString } from '../control/validate.js';
import { invalidParameter, notFound, PierError } from '../errors.js';
import { listKind, removeIdentity } from './service.js';
import { findIdentityById, findIdentityByUserName, type IdentityRow, insertIdentity } from './store.js';

/**
 * Service principals: identities for machines (apps, jobs, CI). Each has an
 * application id, a UUID Pier picks, which is its OAuth client id, the name
 * permissions and grants refer to (`service_principal_name`) and the name of
 * its Postgres role; `displayName` is only for people. Admins manage them.
 */

const MAX_DISPLAY_NAME = 256;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * SCIM create (`POST /api/2.0/preview/scim/v2/ServicePrincipals`).
 *
 * @example
 * const sp = await createServicePrincipal(ctx, { displayName: 'feature-flags app' });
 * sp.applicationId; // '6f0c…' (a UUID): its client id and Postgres role
 */
export async function createServicePrincipal(
  ctx: ControlContext,
  input: { displayName: string; applicationId?: string },
): Promise<IdentityRow> {
  const displayName = input.displayName?.trim();
  if (!displayName) {
    throw invalidParameter('displayName is required: a name people recognise, such as "feature-flags app".');
  }
  if (displayName.length > MAX_DISPLAY_NAME) {
    throw invalidParameter(`displayName must be at most ${MAX_DISPLAY_NAME} characters.`);
  }
  // Pier picks the application id; one may be given (as on Azure), and must be a UUID.
  const supplied = input.applicationId;
  if (supplied !== undefined && !UUID_PATTERN.test(supplied)) {
    throw invalidParameter(`applicationId must be a UUID, got '${supplied}'; omit it and Pier picks one.`);
  }
  const applicationId = (supplied ?? randomUUID()).toLowerCase();
  // A UUID never is, but the rule for login names holds for every identity.
  const reserved = reservedNameReason(applicationId);
  if (reserved) throw invalidParameter(`applicationId '${applicationId}' is reserved: ${reserved}.`);
  return ctx.store.transaction(async (tx) => {
    if (await findIdentityByUserName(tx, applicationId)) {
      throw new PierError(
        'RESOURCE_ALREADY_EXISTS',
        `Service principal with applicationId ${applicationId} already exists.`,
      );
    }
    return insertIdentity(tx, { userName: applicationId, displayName, kind: 'SERVICE_PRINCIPAL' });
  });
}

/** The input of createServicePrincipal from the SCIM body a client sends: `{displayName, applicationId?, active?}`. */
export function servicePrincipalInput(input: unknown): { displayName: string; applicationId?: string } {
  const body = asObject(input, 'The SCIM service principal');
  if (optionalBoolean(body, 'active') === false) {
    throw invalidParameter('A service principal is created active; "active": false is not supported.');
  }
  return {
    displayName: optionalString(body, 'displayName') ?? '',
    applicationId: optionalString(body, 'applicationId'),
  };
}

/** One page of service principals in id order, and how many there are in all. */
export async function listServicePrincipals(
  ctx: ControlContext,
  page: { offset: number; limit: number },
): Promise<{ rows: IdentityRow[]; total: number }> {
  return listKind(ctx, page, 'SERVICE_PRINCIPAL');
}

/** A service principal by SCIM id, or RESOURCE_DOES_NOT_EXIST. */
export async function getServicePrincipal(ctx: ControlContext, id: string): Promise<IdentityRow> {
  const row = await findIdentityById(ctx.store, id);
  if (row?.kind !== 'SERVICE_PRINCIPAL') throw notFound(`Service principal ${id} does not exist.`);
  return row;
}

/** The service principal whose application id (client id, role name) this is. */
export async function findServicePrincipalByApplicationId(
  ctx: ControlContext,
  applicationId: string,
): Promise<IdentityRow | undefined> {
  const row = await findIdentityByUserName(ctx.store, applicationId);
  return row?.kind === 'SERVICE_PRINCIPAL' ? row : undefined;
}

/**
 * Deletes a service principal like a user: its instance permissions and
 * catalog grants, its OAuth secrets (ON DELETE CASCADE) and its personal
 * access tokens go; catalog objects it owns pass to `caller`; access tokens
 * already issued to it stop working at once.
 */
export async function deleteServicePrincipal(
  ctx: ControlContext,
  caller: IdentityRow,
  id: string,
): Promise<void> {
  await removeIdentity(ctx, caller, id, 'SERVICE_PRINCIPAL');
}
