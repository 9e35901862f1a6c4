import type { ControlContext } from '../control/context.js';
import { findInstanceByUid } from '../instances/store.js';
import { instanceDnsName } from '../instances/view.js';
import type { Queryable } from '../store/store.js';
import type { BranchRow, EndpointRow, ProjectRow } from './store.js';
import type { BranchRecord, EndpointRecord } from './view.js';

/** A branch with what its view shows: its instance's state and, on request, its real size. */
export async function branchRecord(
  ctx: ControlContext,
  db: Queryable,
  project: ProjectRow,
  branch: BranchRow,
  options: { size?: boolean } = {},
): Promise<BranchRecord> {
  const instance = await findInstanceByUid(db, branch.instance_uid);
  let logicalSizeBytes: number | undefined;
  if (options.size && instance?.status.provisioned) {
    logicalSizeBytes = (await ctx.engine.storageBytes(branch.instance_uid)).logical;
  }
  return { branch, instance, isDefault: project.spec.default_branch === branch.branch_id, logicalSizeBytes };
}

export async function endpointRecord(
  ctx: ControlContext,
  db: Queryable,
  endpoint: EndpointRow,
): Promise<EndpointRecord> {
  const instance = await findInstanceByUid(db, endpoint.instance_uid);
  const host = instance ? instanceDnsName(instance, ctx.config) : `${endpoint.host_id}.localhost`;
  const lastActive = ctx.activity?.lastActiveTime(endpoint.instance_uid);
  return { endpoint, instance, host, ...(lastActive ? { lastActive } : {}) };
}
