import { randomBytes, randomUUID } from 'node:crypto';
import type { ControlContext } from '../control/context.js';
import { deleteIdentity, type IdentityRow, insertIdentity } from '../identities/store.js';

/** An app's own identity: a service principal and an OAuth secret for it (shown this once). */
export interface AppPrincipal {
  id: string;
  clientId: string;
  secret: string;
}

/** The service principal an app runs as (`app-<name>`), with a secret. */
export async function createAppPrincipal(ctx: ControlContext, appName: string): Promise<AppPrincipal> {
  const clientId = randomUUID();
  const row = await insertIdentity(ctx.store, { userName: clientId, displayName: `app-${appName}`, kind: 'SERVICE_PRINCIPAL' });
  return { id: row.id, clientId, secret: `dose${randomBytes(32).toString('hex')}` };
}

/** Deletes an app's service principal. */
export async function deleteAppPrincipal(ctx: ControlContext, _caller: IdentityRow, id: string): Promise<void> {
  await deleteIdentity(ctx.store, id);
}
