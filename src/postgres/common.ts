import { randomBytes, randomUUID } from 'node:crypto';
import type { ControlContext } from '../control/context.js';
import type { IdentityRow } from '../identities/store.js';
import { setInstancePermission } from '../instances/permissions-store.js';
import {
  allocateLoopbackAddress,
  defaultInstanceSpec,
  findInstanceByUid,
  type InstanceRow,
  type InstanceSpec,
  insertInstance,
  type ParentRef,
  updateInstanceSpec,
} from '../instances/store.js';
import type { Queryable } from '../store/store.js';
import { notFound } from './fields.js';
import {
  type BranchRow,
  type EndpointSpec,
  findBranch,
  findEndpoint,
  findProject,
  insertOperation,
  listEndpoints,
  type OperationRow,
  type ProjectRow,
} from './store.js';

/** The Operation metadata types Autoscaling names (`@type`). */
export type OperationKind = 'Project' | 'Branch' | 'Endpoint' | 'Database' | 'Role';

/**
 * Loads a project the caller may act on: its owner or an admin. Anyone else
 * is told it does not exist. A soft-deleted project is found only with
 * `includeDeleted`.
 */
export async function projectForCaller(
  db: Queryable,
  caller: IdentityRow,
  projectId: string,
  options: { lock?: boolean; includeDeleted?: boolean } = {},
): Promise<ProjectRow> {
  const project = await findProject(db, projectId, options.lock);
  const visible =
    project &&
    (caller.is_admin || project.owner.toLowerCase() === caller.user_name.toLowerCase()) &&
    (options.includeDeleted || !project.delete_time);
  if (!visible) throw notFound(`project id not found: projects/${projectId} does not exist.`);
  return project;
}

export async function branchOf(
  db: Queryable,
  project: ProjectRow,
  branchId: string,
  lock = false,
  options: { includeDeleted?: boolean } = {},
): Promise<BranchRow> {
  const found = await findBranch(db, project.uid, branchId, lock);
  const branch = found?.delete_time && !options.includeDeleted ? undefined : found;
  if (!branch)
    throw notFound(
      `branch id not found: projects/${project.project_id}/branches/${branchId} does not exist.`,
    );
  return branch;
}

/** A branch of a project the caller may act on (projectForCaller, then branchOf). */
export async function branchForCaller(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
): Promise<BranchRow> {
  return branchOf(ctx.store, await projectForCaller(ctx.store, caller, projectId), branchId);
}

export async function endpointOf(db: Queryable, branch: BranchRow, endpointId: string, lock = false) {
  const endpoint = await findEndpoint(db, branch.uid, endpointId, lock);
  if (!endpoint)
    throw notFound(`endpoint id not found: ${branchName(branch)}/endpoints/${endpointId} does not exist.`);
  return endpoint;
}

const branchName = (branch: Pick<BranchRow, 'project_id' | 'branch_id'>) =>
  `projects/${branch.project_id}/branches/${branch.branch_id}`;

/** A host label in Autoscaling's style: `ep-` and random letters (the hostname uses it, not the endpoint id). */
export function newHostId(): string {
  return `ep-${randomBytes(8)
    .toString('hex')
    .replace(/[0-9]/g, (d) => 'ghijklmnop'[Number(d)])}`;
}

/**
 * Records a new operation. Without `wait` it is done at once with
 * `response`; with one, it is done when that instance reaches the state
 * (operations.ts looks, lazily, whenever the operation is read).
 */
export async function startOperation(
  db: Queryable,
  caller: IdentityRow,
  kind: OperationKind,
  resourceName: string,
  result:
    | { wait: { instanceUid: string; state: 'AVAILABLE' | 'STOPPED' | 'SETTLED' | 'GONE' } }
    | { response: Record<string, unknown> },
): Promise<OperationRow> {
  const wait = 'wait' in result ? result.wait : undefined;
  return insertOperation(db, {
    name: `${resourceName}/operations/${randomUUID()}`,
    owner: caller.user_name,
    metadata_type: kind,
    resource_name: resourceName,
    wait_instance: wait?.instanceUid ?? null,
    wait_state: wait?.state ?? null,
    done: !wait,
    response: 'response' in result ? result.response : null,
    error: null,
  });
}

/** The instance spec that makes a branch's server run as its read-write endpoint asks. */
function computeSpecFor(
  current: InstanceSpec,
  readWrite: EndpointSpec | undefined,
  projectDeleted: boolean,
): InstanceSpec {
  const next: InstanceSpec = { ...current };
  if (!readWrite || projectDeleted || readWrite.disabled) {
    next.stopped = true;
    next.suspended = false;
  } else if (current.stopped && !current.suspended) {
    next.stopped = false; // enabled (again)
  }
  if (readWrite) next.compute_units = readWrite.max_cu;
  if (readWrite?.suspend_timeout_seconds) next.suspend_timeout_seconds = readWrite.suspend_timeout_seconds;
  else delete next.suspend_timeout_seconds;
  if (!next.suspend_timeout_seconds && next.suspended) {
    next.stopped = false;
    next.suspended = false;
  }
  return next;
}

/**
 * Runs a change of computes in one transaction and, once it is committed,
 * wakes the reconciler for each instance whose spec it changed (a kick
 * before the commit would find the old spec).
 */
export async function changeComputes(
  ctx: ControlContext,
  work: (tx: Queryable) => Promise<{ op: OperationRow; kicks: string[] }>,
): Promise<OperationRow> {
  const { op, kicks } = await ctx.store.transaction(work);
  for (const uid of new Set(kicks)) ctx.reconciler.kick(uid);
  return op;
}

/**
 * Brings a branch's computes in line with its endpoints: its own instance
 * runs as the read-write endpoint says, each read-only endpoint's standby as
 * that endpoint says (sized at least like the read-write one: Postgres needs
 * a hot standby's connection and worker limits to be at least its
 * primary's). Returns the instance uids whose spec changed (to kick).
 */
export async function syncBranchCompute(
  db: Queryable,
  branch: BranchRow,
  projectDeleted: boolean,
): Promise<string[]> {
  // A soft-deleted branch's computes stop, like a soft-deleted project's.
  const stopped = projectDeleted || Boolean(branch.delete_time);
  const endpoints = await listEndpoints(db, branch.uid);
  const readWrite = endpoints.find((e) => e.spec.endpoint_type === 'ENDPOINT_TYPE_READ_WRITE');
  const wanted: [string, EndpointSpec | undefined][] = [[branch.instance_uid, readWrite?.spec]];
  for (const endpoint of endpoints) {
    if (endpoint.spec.endpoint_type !== 'ENDPOINT_TYPE_READ_ONLY') continue;
    const maxCu = Math.max(endpoint.spec.max_cu, readWrite?.spec.max_cu ?? 0);
    wanted.push([endpoint.instance_uid, { ...endpoint.spec, max_cu: maxCu }]);
  }
  const changed: string[] = [];
  for (const [uid, spec] of wanted) {
    await db.query('SELECT 1 FROM instances WHERE uid = $1 FOR UPDATE', [uid]);
    const instance = await findInstanceByUid(db, uid);
    if (!instance || instance.spec.deleted) continue;
    const next = computeSpecFor(instance.spec, spec, stopped);
    if (JSON.stringify(next) === JSON.stringify(instance.spec)) continue;
    await updateInstanceSpec(db, instance.uid, next);
    changed.push(uid);
  }
  return changed;
}

/**
 * Makes the instance that holds a new branch's data (and runs its
 * read-write endpoint): hidden from the Provisioned API, managed by the
 * project's owner.
 */
export async function insertBranchInstance(
  db: Queryable,
  ctx: ControlContext,
  owner: string,
  options: {
    hostId: string;
    readWrite: EndpointSpec | undefined;
    sourceUid?: string;
    parent?: ParentRef;
    standbyOf?: string;
  },
): Promise<InstanceRow> {
  await db.query('LOCK TABLE instances IN SHARE ROW EXCLUSIVE MODE');
  const base: InstanceSpec = {
    ...defaultInstanceSpec(),
    ...(options.sourceUid ? { source_uid: options.sourceUid } : {}),
    ...(options.parent ? { parent: options.parent } : {}),
    ...(options.standbyOf ? { standby_of: options.standbyOf } : {}),
  };
  const spec = computeSpecFor(base, options.readWrite, false);
  const address = ctx.config.dnsSuffix ? null : await allocateLoopbackAddress(db);
  const row = await insertInstance(db, {
    uid: randomUUID(),
    name: options.hostId,
    creator: owner,
    spec,
    address,
    nodeId: ctx.config.nodeId,
    autoscaling: true,
  });
  await setInstancePermission(db, row.uid, owner, 'CAN_MANAGE');
  return row;
}

/** Marks an instance for deletion (the reconciler removes its data, WAL archive and backups: an Autoscaling delete is whole). */
export async function deleteBranchInstance(db: Queryable, instanceUid: string): Promise<void> {
  const instance = await findInstanceByUid(db, instanceUid);
  if (instance && !instance.spec.deleted) {
    await updateInstanceSpec(db, instanceUid, { ...instance.spec, deleted: true, purge: true });
  }
}

/** Marks a branch's instance and its read-only endpoints' standbys for deletion; returns their uids. */
export async function deleteBranchComputes(db: Queryable, branch: BranchRow): Promise<string[]> {
  const uids = [
    ...(await listEndpoints(db, branch.uid))
      .filter((e) => e.spec.endpoint_type === 'ENDPOINT_TYPE_READ_ONLY')
      .map((e) => e.instance_uid),
    branch.instance_uid,
  ];
  for (const uid of uids) await deleteBranchInstance(db, uid);
  return uids;
}
