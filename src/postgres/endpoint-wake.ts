import type { ControlContext } from '../control/context.js';
import type { IdentityRow } from '../identities/store.js';
import { resumeSuspended } from '../instances/scale-to-zero.js';
import { getEndpoint } from './endpoints.js';
import { badRequest } from './fields.js';
import type { EndpointRow } from './store.js';

/**
 * Wakes a suspended endpoint, as the first client connection through the
 * proxy would: its server is set running and the reconciler starts it (the
 * endpoint reports INIT, then ACTIVE) and stays up for its whole suspend
 * timeout from then. Pier's own action, behind the
 * console's *Wake up* button: Autoscaling's API has no start verb. A
 * running endpoint is left as it is; a disabled one is refused, since
 * Databricks lets neither a connection nor a console action start it.
 */
export async function wakeBranchEndpoint(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  endpointId: string,
): Promise<EndpointRow> {
  const endpoint = await getEndpoint(ctx, caller, projectId, branchId, endpointId);
  if (endpoint.spec.disabled) {
    throw badRequest(
      `endpoint ${endpointId} is disabled: nothing wakes it. Set spec.disabled to false to enable it.`,
    );
  }
  // Its suspend timeout then counts from when it is running again, not from its last client.
  if (await resumeSuspended(ctx, endpoint.instance_uid)) ctx.activity?.woken(endpoint.instance_uid);
  return endpoint;
}
