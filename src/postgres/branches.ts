import { randomUUID } from 'node:crypto';
import { restorePointOf } from '../backups/service.js';
import type { ControlContext } from '../control/context.js';
import { PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { findInstanceByUid, type ParentRef } from '../instances/store.js';
import { decodePageToken, encodePageToken } from '../pagination.js';
import {
  branchOf,
  changeComputes,
  deleteBranchComputes,
  insertBranchInstance,
  newHostId,
  projectForCaller,
  startOperation,
  syncBranchCompute,
} from './common.js';
import {
  badRequest,
  formatDuration,
  invalid,
  maskPaths,
  objectField,
  optionalBool,
  optionalText,
  pageSize,
  parseDuration,
  parseTimestamp,
  requiredId,
  valueAt,
} from './fields.js';
import { PRIMARY_ENDPOINT_ID, readWriteSpec } from './projects.js';
import {
  type BranchRow,
  type BranchSpec,
  copyCatalogRows,
  deleteBranchRow,
  findBranch,
  insertBranch,
  insertEndpoint,
  listBranches,
  type OperationRow,
  type ProjectRow,
  setBranchDeleted,
  updateBranch,
} from './store.js';

const BRANCH_PATHS = ['spec.is_protected', 'spec.ttl', 'spec.expire_time', 'spec.no_expiry'] as const;
const BRANCH_GROUPS = { 'spec.expiration': ['spec.ttl', 'spec.expire_time', 'spec.no_expiry'] };
const BRANCH_IMMUTABLE = [
  'spec.source_branch',
  'spec.source_branch_lsn',
  'spec.source_branch_time',
  'spec.source_snapshot',
];
/** A branch expires at most this far ahead (as Databricks' 30-day limit on branch expiry). */
const MAX_TTL_SECONDS = 30 * 86_400;

/** Reads exactly one of `ttl`, `expire_time`, `no_expiry` (none: no change). */
function readExpiration(
  spec: Record<string, unknown>,
  now: Date,
): { expireTime: Date | null; noExpiry: boolean } | undefined {
  const given = ['ttl', 'expire_time', 'no_expiry'].filter((f) => spec[f] !== undefined && spec[f] !== null);
  if (given.length === 0) return undefined;
  if (given.length > 1)
    throw invalid(`spec: set one of ttl, expire_time or no_expiry, not ${given.join(' and ')}.`);
  if (given[0] === 'no_expiry') {
    if (optionalBool(spec, 'no_expiry', 'spec.no_expiry') !== true)
      throw invalid('spec.no_expiry may only be true; to expire, set ttl or expire_time.');
    return { expireTime: null, noExpiry: true };
  }
  const expireTime =
    given[0] === 'ttl'
      ? new Date(now.getTime() + parseDuration(spec.ttl, 'spec.ttl') * 1000)
      : parseTimestamp(spec.expire_time, 'spec.expire_time');
  if (expireTime.getTime() <= now.getTime())
    throw invalid(`spec.${given[0]}: the branch would expire in the past (${expireTime.toISOString()}).`);
  if (expireTime.getTime() - now.getTime() > MAX_TTL_SECONDS * 1000) {
    throw invalid(
      `spec.${given[0]}: a branch expires at most ${formatDuration(MAX_TTL_SECONDS)} (30 days) from now.`,
    );
  }
  return { expireTime, noExpiry: false };
}

/** The name a body gives a source branch (`projects/p/branches/b` or `b`) as a branch id. */
function sourceBranchId(project: ProjectRow, value: string | undefined): string {
  if (!value) return project.spec.default_branch;
  const parts = value.split('/');
  if (
    parts.length === 4 &&
    (parts[0] !== 'projects' || parts[1] !== project.project_id || parts[2] !== 'branches')
  ) {
    throw invalid(`spec.source_branch ${value} is not a branch of projects/${project.project_id}.`);
  }
  return parts[parts.length - 1];
}

/**
 * `POST /projects/{p}/branches?branch_id=`: a copy of the source branch's
 * data as of now, in a data directory of its own (a base backup of the
 * running source, replayed to its end LSN and promoted to a new timeline),
 * with a `primary` read-write endpoint. Done when that endpoint is ACTIVE.
 */
export async function createBranch(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchIdParam: string | undefined,
  input: Record<string, unknown>,
  options: { replaceExisting?: boolean } = {},
): Promise<OperationRow> {
  const branchId = requiredId(branchIdParam, 'branch_id');
  const spec = objectField(input, 'spec', 'spec');
  // replace_existing: an existing branch (e.g. the implicit production) is updated in place instead.
  if (options.replaceExisting) {
    const project = await projectForCaller(ctx.store, caller, projectId);
    const existing = await findBranch(ctx.store, project.uid, branchId);
    if (existing) return replaceBranch(ctx, caller, projectId, existing, input);
  }
  if (spec.source_snapshot !== undefined)
    throw invalid('spec.source_snapshot: Pier has no snapshots; branch from source_branch instead.');
  const now = new Date();
  const expiration = readExpiration(spec, now);
  const isProtected = optionalBool(spec, 'is_protected', 'spec.is_protected') ?? false;
  if (isProtected && expiration?.expireTime)
    throw invalid('spec: a protected branch cannot expire; drop ttl/expire_time or is_protected.');
  const lsn = optionalText(spec, 'source_branch_lsn', 'spec.source_branch_lsn');
  const at =
    spec.source_branch_time !== undefined
      ? parseTimestamp(spec.source_branch_time, 'spec.source_branch_time')
      : undefined;
  if (lsn !== undefined && !/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i.test(lsn)) {
    throw invalid(`spec.source_branch_lsn ${JSON.stringify(lsn)} is not an LSN such as "16/B374D848".`);
  }
  if (lsn !== undefined && at !== undefined)
    throw invalid('spec: set source_branch_lsn or source_branch_time, not both.');
  const sourceId = sourceBranchId(
    await projectForCaller(ctx.store, caller, projectId),
    optionalText(spec, 'source_branch', 'spec.source_branch'),
  );
  // A past point: a point-in-time restore of the source (its nearest base backup and WAL archive).
  let parent: ParentRef | undefined;
  if (lsn !== undefined || at !== undefined) {
    const project = await projectForCaller(ctx.store, caller, projectId);
    const sourceBranch = await branchOf(ctx.store, project, sourceId);
    const sourceInstance = await findInstanceByUid(ctx.store, sourceBranch.instance_uid);
    if (!sourceInstance) throw badRequest(`The source branch ${sourceId} has no data.`);
    parent = await restorePointOf(
      ctx,
      sourceInstance,
      { lsn, branch_time: spec.source_branch_time },
      'spec',
      { lsn: 'source_branch_lsn', time: 'source_branch_time' },
    );
  }
  const { op, instanceUid } = await ctx.store.transaction(async (tx) => {
    const project = await projectForCaller(tx, caller, projectId, { lock: true });
    if (await findBranch(tx, project.uid, branchId)) {
      throw new PierError(
        'ALREADY_EXISTS',
        `branch with that id already exists: projects/${projectId}/branches/${branchId}.`,
      );
    }
    const source = await branchOf(tx, project, sourceId);
    const endpoint = readWriteSpec(project.spec.default_endpoint);
    const hostId = newHostId();
    const instance = await insertBranchInstance(tx, ctx, project.owner, {
      hostId,
      readWrite: endpoint,
      ...(parent ? { parent } : { sourceUid: source.instance_uid }),
    });
    const uid = randomUUID();
    await insertBranch(tx, {
      uid,
      project_uid: project.uid,
      branch_id: branchId,
      spec: { is_protected: isProtected, ...(expiration?.noExpiry ? { no_expiry: true } : {}) },
      instance_uid: instance.uid,
      source_branch: source.branch_id,
      source_branch_lsn: lsn ?? null,
      source_branch_time: at ?? now,
      expire_time: expiration?.expireTime ?? null,
    });
    await insertEndpoint(tx, {
      uid: randomUUID(),
      host_id: hostId,
      branch_uid: uid,
      endpoint_id: PRIMARY_ENDPOINT_ID,
      spec: endpoint,
      instance_uid: instance.uid,
    });
    await copyCatalogRows(tx, source.uid, uid);
    const op = await startOperation(tx, caller, 'Branch', `projects/${projectId}/branches/${branchId}`, {
      wait: { instanceUid: instance.uid, state: 'AVAILABLE' },
    });
    return { op, instanceUid: instance.uid };
  });
  ctx.reconciler.kick(instanceUid);
  return op;
}

/** The updatable fields the body sets, applied to an existing branch; nothing set: the branch as it is. */
async function replaceBranch(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branch: BranchRow,
  input: Record<string, unknown>,
): Promise<OperationRow> {
  if (BRANCH_PATHS.some((path) => valueAt(input, path) !== undefined)) {
    return updateProjectBranch(ctx, caller, projectId, branch.branch_id, 'spec', input);
  }
  return startOperation(ctx.store, caller, 'Branch', `projects/${projectId}/branches/${branch.branch_id}`, {
    wait: { instanceUid: branch.instance_uid, state: 'SETTLED' },
  });
}

export async function getBranch(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
) {
  const project = await projectForCaller(ctx.store, caller, projectId);
  return { project, branch: await branchOf(ctx.store, project, branchId) };
}

/** `POST …/branches/{b}/undelete`: a soft-deleted branch comes back, its computes as its endpoints say. */
export async function undeleteProjectBranch(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
): Promise<OperationRow> {
  return changeComputes(ctx, async (tx) => {
    const project = await projectForCaller(tx, caller, projectId, { lock: true });
    const branch = await branchOf(tx, project, branchId, true, { includeDeleted: true });
    if (!branch.delete_time) throw badRequest(`projects/${projectId}/branches/${branchId} is not deleted.`);
    await setBranchDeleted(tx, branch.uid, null);
    const kicks = await syncBranchCompute(tx, { ...branch, delete_time: null }, false);
    const op = await startOperation(tx, caller, 'Branch', `projects/${projectId}/branches/${branchId}`, {
      wait: { instanceUid: branch.instance_uid, state: 'SETTLED' },
    });
    return { op, kicks };
  });
}

export async function listProjectBranches(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  query: Record<string, string | undefined>,
): Promise<{ project: ProjectRow; rows: BranchRow[]; nextPageToken?: string }> {
  const project = await projectForCaller(ctx.store, caller, projectId);
  const size = pageSize(query.page_size, 100);
  const rows = await listBranches(ctx.store, project.uid, {
    after: decodePageToken(query.page_token),
    limit: size + 1,
    hideDeleted: query.show_deleted !== 'true',
  });
  const page = rows.slice(0, size);
  return {
    project,
    rows: page,
    nextPageToken: rows.length > size ? encodePageToken(page[page.length - 1].branch_id) : undefined,
  };
}

/** PATCH a branch: `spec.is_protected` and its expiration (`spec.expiration` or its members). */
export async function updateProjectBranch(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  mask: string | undefined,
  input: Record<string, unknown>,
): Promise<OperationRow> {
  const paths = maskPaths(mask, input, BRANCH_PATHS, BRANCH_GROUPS, BRANCH_IMMUTABLE);
  return ctx.store.transaction(async (tx) => {
    const project = await projectForCaller(tx, caller, projectId, { lock: true });
    const branch = await branchOf(tx, project, branchId, true);
    const spec = objectField(input, 'spec', 'spec');
    const next: BranchSpec = { ...branch.spec };
    let expireTime = branch.expire_time;
    if (paths.includes('spec.is_protected'))
      next.is_protected = optionalBool(spec, 'is_protected', 'spec.is_protected') ?? false;
    const expiryFields = paths.filter((p) => p !== 'spec.is_protected').map((p) => p.slice(5));
    if (expiryFields.length > 0) {
      const picked = Object.fromEntries(expiryFields.map((f) => [f, valueAt(spec, f)]));
      const expiration = readExpiration(picked, new Date());
      if (expiration) {
        expireTime = expiration.expireTime;
        if (expiration.noExpiry) next.no_expiry = true;
        else delete next.no_expiry;
      }
    }
    if (expireTime && branch.branch_id === project.spec.default_branch)
      throw badRequest('The default branch cannot expire.');
    if (expireTime && next.is_protected)
      throw badRequest('A protected branch cannot expire: unprotect it or set no_expiry.');
    await updateBranch(tx, branch.uid, next, expireTime);
    const updated = (await findBranch(tx, project.uid, branchId)) as BranchRow;
    return startOperation(tx, caller, 'Branch', `projects/${projectId}/branches/${branchId}`, {
      wait: { instanceUid: updated.instance_uid, state: 'SETTLED' },
    });
  });
}

/**
 * DELETE a branch: refused for the default (root) branch, a protected one
 * and one other branches were made from. Soft by default (its computes
 * stop, it is hidden until `undelete`, its data kept until `purge_time`,
 * the project's history retention later); `purge` removes its data now.
 */
export async function deleteProjectBranch(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  options: { expired?: boolean; purge?: boolean; allowMissing?: boolean } = {},
): Promise<OperationRow> {
  const { op, gone } = await ctx.store.transaction(async (tx) => {
    const project = await projectForCaller(tx, caller, projectId, { lock: true });
    const name = `projects/${projectId}/branches/${branchId}`;
    // allow_missing: deleting a branch that is not there (or already deleted) succeeds, changing nothing.
    const found = await findBranch(tx, project.uid, branchId, true);
    if (options.allowMissing && (!found || (found.delete_time && !options.purge))) {
      const op = await startOperation(tx, caller, 'Branch', name, {
        response: { '@type': 'type.googleapis.com/google.protobuf.Empty' },
      });
      return { op, gone: [] as string[] };
    }
    const branch = await branchOf(tx, project, branchId, true, { includeDeleted: options.purge });
    if (branch.branch_id === project.spec.default_branch) {
      throw badRequest(
        `cannot delete branch ${branchId}: it is the project's default branch (MANAGED_BY_PARENT). Delete the project, or make another branch the default first.`,
      );
    }
    if (branch.spec.is_protected)
      throw badRequest(
        `cannot delete protected branch ${branchId}. Unprotect it first (update-branch … spec.is_protected false).`,
      );
    const children = (await listBranches(tx, project.uid, { hideDeleted: true })).filter(
      (b) => b.source_branch === branchId,
    );
    if (children.length > 0 && !options.expired) {
      throw badRequest(
        `cannot delete branch ${branchId}: branch ${children[0].branch_id} was created from it. Delete its child branches first.`,
      );
    }
    if (!options.purge) {
      const now = new Date();
      await setBranchDeleted(tx, branch.uid, {
        delete_time: now,
        purge_time: new Date(now.getTime() + project.spec.history_retention_seconds * 1000),
      });
      const stopped = await syncBranchCompute(tx, { ...branch, delete_time: now }, false);
      const op = await startOperation(tx, caller, 'Branch', name, {
        response: { '@type': 'type.googleapis.com/google.protobuf.Empty' },
      });
      return { op, gone: stopped };
    }
    const gone = await deleteBranchComputes(tx, branch);
    await deleteBranchRow(tx, branch.uid);
    const op = await startOperation(tx, caller, 'Branch', name, {
      wait: { instanceUid: branch.instance_uid, state: 'GONE' },
    });
    return { op, gone };
  });
  for (const uid of gone) ctx.reconciler.kick(uid);
  return op;
}
