import { randomUUID } from 'node:crypto';
import type { ControlContext } from '../control/context.js';
import { describe } from '../control/validate.js';
import { PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { findInstanceByUid } from '../instances/store.js';
import {
  branchOf,
  changeComputes,
  deleteBranchInstance,
  endpointOf,
  insertBranchInstance,
  newHostId,
  projectForCaller,
  startOperation,
  syncBranchCompute,
} from './common.js';
import {
  badRequest,
  checkComputeUnits,
  invalid,
  maskPaths,
  objectField,
  optionalBool,
  optionalNumber,
  readSuspension,
  requiredId,
  valueAt,
} from './fields.js';
import { minSuspendSeconds } from './projects.js';
import {
  deleteEndpointRow,
  type EndpointRow,
  type EndpointSpec,
  type EndpointType,
  findEndpoint,
  insertEndpoint,
  listEndpoints,
  type OperationRow,
  updateEndpointSpec,
} from './store.js';

const ENDPOINT_TYPES: EndpointType[] = ['ENDPOINT_TYPE_READ_WRITE', 'ENDPOINT_TYPE_READ_ONLY'];
const ENDPOINT_PATHS = [
  'spec.autoscaling_limit_min_cu',
  'spec.autoscaling_limit_max_cu',
  'spec.suspend_timeout_duration',
  'spec.no_suspension',
  'spec.disabled',
  'spec.settings.pg_settings',
] as const;
const ENDPOINT_GROUPS = {
  'spec.suspension': ['spec.suspend_timeout_duration', 'spec.no_suspension'],
  'spec.settings': ['spec.settings.pg_settings'],
};

function refusePgSettings(settings: Record<string, unknown>): void {
  const pg = settings.pg_settings;
  if (pg !== undefined && pg !== null && (typeof pg !== 'object' || Object.keys(pg).length > 0)) {
    throw new PierError(
      'NOT_IMPLEMENTED',
      'spec.settings.pg_settings is not supported yet: Pier sizes Postgres from the compute units only. Leave it empty.',
    );
  }
}

/** Reads sizing and suspension over `base` (only fields present change). */
function readSizing(ctx: ControlContext, spec: Record<string, unknown>, base: EndpointSpec): EndpointSpec {
  const min =
    optionalNumber(spec, 'autoscaling_limit_min_cu', 'spec.autoscaling_limit_min_cu') ?? base.min_cu;
  const max =
    optionalNumber(spec, 'autoscaling_limit_max_cu', 'spec.autoscaling_limit_max_cu') ??
    Math.max(base.max_cu, min);
  checkComputeUnits(min, max, 'spec');
  const next: EndpointSpec = { ...base, min_cu: min, max_cu: max };
  const suspension = readSuspension(spec, 'spec', minSuspendSeconds(ctx));
  if (suspension) {
    if (suspension.seconds) next.suspend_timeout_seconds = suspension.seconds;
    else delete next.suspend_timeout_seconds;
  }
  const disabled = optionalBool(spec, 'disabled', 'spec.disabled');
  if (disabled !== undefined) next.disabled = disabled;
  refusePgSettings(objectField(spec, 'settings', 'spec.settings'));
  return next;
}

async function branchFor(ctx: ControlContext, caller: IdentityRow, projectId: string, branchId: string) {
  const project = await projectForCaller(ctx.store, caller, projectId);
  return { project, branch: await branchOf(ctx.store, project, branchId) };
}

const endpointName = (projectId: string, branchId: string, endpointId: string) =>
  `projects/${projectId}/branches/${branchId}/endpoints/${endpointId}`;

/**
 * `POST …/branches/{b}/endpoints?endpoint_id=`: the branch's read-write
 * endpoint (at most one: it is the server on the branch's data). Done when
 * it is ACTIVE (IDLE, if created disabled).
 */
export async function createEndpoint(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  endpointIdParam: string | undefined,
  input: Record<string, unknown>,
  options: { replaceExisting?: boolean } = {},
): Promise<OperationRow> {
  const endpointId = requiredId(endpointIdParam, 'endpoint_id');
  // replace_existing: an existing endpoint (e.g. the implicit primary) is updated in place instead.
  if (options.replaceExisting) {
    const { branch } = await branchFor(ctx, caller, projectId, branchId);
    const existing = await findEndpoint(ctx.store, branch.uid, endpointId);
    if (existing) {
      const type = valueAt(input, 'spec.endpoint_type');
      if (type !== undefined && type !== existing.spec.endpoint_type) {
        throw invalid(
          `spec.endpoint_type cannot change: ${endpointName(projectId, branchId, endpointId)} is ${existing.spec.endpoint_type}.`,
        );
      }
      if (ENDPOINT_PATHS.some((path) => valueAt(input, path) !== undefined)) {
        return updateBranchEndpoint(ctx, caller, projectId, branchId, endpointId, 'spec', input);
      }
      return startOperation(ctx.store, caller, 'Endpoint', endpointName(projectId, branchId, endpointId), {
        wait: { instanceUid: existing.instance_uid, state: 'SETTLED' },
      });
    }
  }
  const spec = objectField(input, 'spec', 'spec');
  const type = spec.endpoint_type;
  if (type === undefined || type === null)
    throw invalid(`Field 'endpoint.spec.endpoint_type' is required, expected non-default value (not "")!`);
  if (!ENDPOINT_TYPES.includes(type as EndpointType)) {
    throw invalid(`spec.endpoint_type must be one of ${ENDPOINT_TYPES.join(', ')}, got ${describe(type)}.`);
  }
  const { project } = await branchFor(ctx, caller, projectId, branchId);
  const base: EndpointSpec = {
    endpoint_type: type as EndpointType,
    min_cu: project.spec.default_endpoint.min_cu,
    max_cu: project.spec.default_endpoint.max_cu,
    ...(project.spec.default_endpoint.suspend_timeout_seconds
      ? { suspend_timeout_seconds: project.spec.default_endpoint.suspend_timeout_seconds }
      : {}),
    disabled: false,
  };
  const endpoint = readSizing(ctx, spec, base);
  return changeComputes(ctx, async (tx) => {
    const locked = await projectForCaller(tx, caller, projectId, { lock: true });
    const branch = await branchOf(tx, locked, branchId, true);
    if (await findEndpoint(tx, branch.uid, endpointId)) {
      throw new PierError(
        'ALREADY_EXISTS',
        `endpoint with that id already exists: ${endpointName(projectId, branchId, endpointId)}.`,
      );
    }
    const readWrite = (await listEndpoints(tx, branch.uid)).find(
      (e) => e.spec.endpoint_type === 'ENDPOINT_TYPE_READ_WRITE',
    );
    let instanceUid = branch.instance_uid;
    let hostId: string;
    if (endpoint.endpoint_type === 'ENDPOINT_TYPE_READ_WRITE') {
      if (readWrite) {
        throw badRequest(
          `branch ${branchId} already has a read-write endpoint (${readWrite.endpoint_id}); a branch has at most one.`,
        );
      }
      hostId = (await findInstanceByUid(tx, branch.instance_uid))?.name ?? newHostId();
    } else {
      // A read-only endpoint is a hot standby of the branch's server, on a host of its own.
      if (!readWrite) {
        throw badRequest(
          `branch ${branchId} has no read-write endpoint: a read-only endpoint follows it. Create the read-write endpoint first.`,
        );
      }
      hostId = newHostId();
      const standby = await insertBranchInstance(tx, ctx, locked.owner, {
        hostId,
        readWrite: endpoint,
        standbyOf: branch.instance_uid,
      });
      instanceUid = standby.uid;
    }
    await insertEndpoint(tx, {
      uid: randomUUID(),
      host_id: hostId,
      branch_uid: branch.uid,
      endpoint_id: endpointId,
      spec: endpoint,
      instance_uid: instanceUid,
    });
    const kicks = await syncBranchCompute(tx, branch, false);
    const op = await startOperation(tx, caller, 'Endpoint', endpointName(projectId, branchId, endpointId), {
      wait: { instanceUid, state: endpoint.disabled ? 'STOPPED' : 'AVAILABLE' },
    });
    return { op, kicks: [...kicks, instanceUid] };
  });
}

export async function getEndpoint(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  endpointId: string,
) {
  const { branch } = await branchFor(ctx, caller, projectId, branchId);
  return endpointOf(ctx.store, branch, endpointId);
}

export async function listBranchEndpoints(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
): Promise<EndpointRow[]> {
  const { branch } = await branchFor(ctx, caller, projectId, branchId);
  return listEndpoints(ctx.store, branch.uid);
}

/** PATCH an endpoint: sizing, suspension, `disabled`. A new size restarts its server. */
export async function updateBranchEndpoint(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  endpointId: string,
  mask: string | undefined,
  input: Record<string, unknown>,
): Promise<OperationRow> {
  const paths = maskPaths(mask, input, ENDPOINT_PATHS, ENDPOINT_GROUPS, ['spec.endpoint_type']);
  const picked: Record<string, unknown> = {};
  for (const path of paths) {
    const [, field, leaf] = path.split('.');
    picked[field] = leaf ? { [leaf]: valueAt(input, path) } : valueAt(input, path);
  }
  return changeComputes(ctx, async (tx) => {
    const project = await projectForCaller(tx, caller, projectId, { lock: true });
    const branch = await branchOf(tx, project, branchId, true);
    const endpoint = await endpointOf(tx, branch, endpointId, true);
    const next = readSizing(ctx, picked, endpoint.spec);
    await updateEndpointSpec(tx, endpoint.uid, next);
    const kicks = await syncBranchCompute(tx, branch, false);
    const op = await startOperation(tx, caller, 'Endpoint', endpointName(projectId, branchId, endpointId), {
      wait: { instanceUid: endpoint.instance_uid, state: 'SETTLED' },
    });
    return { op, kicks };
  });
}

/** DELETE an endpoint: its server stops; the branch's data stays. */
export async function deleteBranchEndpoint(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  endpointId: string,
): Promise<OperationRow> {
  return changeComputes(ctx, async (tx) => {
    const project = await projectForCaller(tx, caller, projectId, { lock: true });
    const branch = await branchOf(tx, project, branchId, true);
    const endpoint = await endpointOf(tx, branch, endpointId, true);
    if (branch.spec.is_protected)
      throw badRequest(`cannot delete endpoint ${endpointId}: branch ${branchId} is protected.`);
    if (
      branch.branch_id === project.spec.default_branch &&
      endpoint.spec.endpoint_type === 'ENDPOINT_TYPE_READ_WRITE'
    ) {
      throw badRequest(
        `cannot delete endpoint ${endpointId}: it is the default branch's read-write endpoint (MANAGED_BY_PARENT). Disable it instead (spec.disabled).`,
      );
    }
    await deleteEndpointRow(tx, endpoint.uid);
    const kicks = await syncBranchCompute(tx, branch, false);
    // A read-only endpoint's standby goes with it; a read-write endpoint's server stops (the data stays).
    if (endpoint.instance_uid !== branch.instance_uid) {
      await deleteBranchInstance(tx, endpoint.instance_uid);
      kicks.push(endpoint.instance_uid);
    }
    const op = await startOperation(tx, caller, 'Endpoint', endpointName(projectId, branchId, endpointId), {
      response: { '@type': 'type.googleapis.com/google.protobuf.Empty' },
    });
    return { op, kicks };
  });
}
