import type { ControlContext } from '../control/context.js';
import { createOAuthSecret } from '../identities/oauth-secrets.js';
import {
  createServicePrincipal,
  deleteServicePrincipal,
  findServicePrincipalByApplicationId,
} from '../identities/service-principals.js';
import type { IdentityRow } from '../identities/store.js';

/** An app's own identity: a service principal and an OAuth secret for it (shown this once). */
export interface AppPrincipal {
  id: string;
  clientId: string;
  secret: string;
}

/**
 * The service principal an app runs as, as Databricks Apps make one per app
 * (`app-<name>`), with an OAuth secret: the app's DATABRICKS_CLIENT_ID and
 * DATABRICKS_CLIENT_SECRET. Its application id is also its Postgres role.
 */
export async function createAppPrincipal(ctx: ControlContext, appName: string): Promise<AppPrincipal> {
  const principal = await createServicePrincipal(ctx, { displayName: `app-${appName}` });
  const { secret } = await createOAuthSecret(ctx, principal.id);
  return { id: principal.id, clientId: principal.applicationId ?? principal.user_name, secret };
}

/** Deletes an app's service principal (its secrets and permissions go with it). */
export async function deleteAppPrincipal(
  ctx: ControlContext,
  caller: IdentityRow,
  id: string,
): Promise<void> {
  await deleteServicePrincipal(ctx, caller, id);
}

/** Whether the app's service principal still exists (it may have been deleted through SCIM). */
export async function appPrincipalExists(ctx: ControlContext, clientId: string): Promise<boolean> {
  return (await findServicePrincipalByApplicationId(ctx, clientId)) !== undefined;
}
