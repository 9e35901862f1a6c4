import { randomUUID } from 'node:crypto';
import type { ControlContext } from '../control/context.js';
import { PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { decodePageToken, encodePageToken } from '../pagination.js';
import type { Queryable } from '../store/store.js';
import {
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
  checkComputeUnits,
  formatDuration,
  invalid,
  maskPaths,
  objectField,
  optionalBool,
  optionalNumber,
  optionalText,
  pageSize,
  parseDuration,
  readSuspension,
  requiredId,
  valueAt,
} from './fields.js';
import { readRoleSpec, roleIdFor } from './roles.js';
import {
  deleteProjectRow,
  type EndpointSpec,
  insertBranch,
  insertDatabase,
  insertEndpoint,
  insertProject,
  insertRole,
  listBranches,
  listProjectsPage,
  type OperationRow,
  type ProjectRow,
  type ProjectSpec,
  updateProject,
} from './store.js';
import { projectView } from './view.js';

export const DEFAULT_BRANCH_ID = 'production';
export const PRIMARY_ENDPOINT_ID = 'primary';
export const DEFAULT_DATABASE = 'databricks_postgres';
const DAY = 86_400;

const PROJECT_PATHS = [
  'spec.display_name',
  'spec.history_retention_duration',
  'spec.default_endpoint_settings.autoscaling_limit_min_cu',
  'spec.default_endpoint_settings.autoscaling_limit_max_cu',
  'spec.default_endpoint_settings.suspend_timeout_duration',
  'spec.default_endpoint_settings.no_suspension',
  'spec.default_endpoint_settings.pg_settings',
  'spec.default_branch',
  'spec.enable_pg_native_login',
  'spec.custom_tags',
  'spec.budget_policy_id',
] as const;
const SUSPENSION = [
  'spec.default_endpoint_settings.suspend_timeout_duration',
  'spec.default_endpoint_settings.no_suspension',
];
const PROJECT_GROUPS = {
  'spec.default_endpoint_settings': PROJECT_PATHS.filter((p) =>
    p.startsWith('spec.default_endpoint_settings.'),
  ),
  'spec.project_default_settings.suspension': SUSPENSION,
  'spec.default_endpoint_settings.suspension': SUSPENSION,
};

export function minSuspendSeconds(ctx: ControlContext): number {
  return ctx.config.minSuspendTimeoutSeconds ?? 60;
}

/** Reads the endpoint settings of a body over `base` (only the fields present change). */
function readEndpointSettings(
  ctx: ControlContext,
  body: Record<string, unknown>,
  path: string,
  base: ProjectSpec['default_endpoint'],
): ProjectSpec['default_endpoint'] {
  const min =
    optionalNumber(body, 'autoscaling_limit_min_cu', `${path}.autoscaling_limit_min_cu`) ?? base.min_cu;
  const max =
    optionalNumber(body, 'autoscaling_limit_max_cu', `${path}.autoscaling_limit_max_cu`) ??
    Math.max(base.max_cu, min);
  checkComputeUnits(min, max, path);
  const suspension = readSuspension(body, path, minSuspendSeconds(ctx));
  const next = { ...base, min_cu: min, max_cu: max };
  if (suspension) {
    if (suspension.seconds) next.suspend_timeout_seconds = suspension.seconds;
    else delete next.suspend_timeout_seconds;
  }
  if (body.pg_settings !== undefined)
    next.pg_settings = readPgSettings(body.pg_settings, `${path}.pg_settings`);
  return next;
}

function readPgSettings(value: unknown, path: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(`${path} must be an object of strings.`);
  for (const [key, setting] of Object.entries(value)) {
    if (!/^[a-z_][a-z0-9_.]*$/.test(key) || typeof setting !== 'string') {
      throw invalid(`${path}: '${key}' must be a Postgres setting name with a string value.`);
    }
  }
  return value as Record<string, string>;
}

function readTags(value: unknown): ProjectSpec['custom_tags'] {
  if (!Array.isArray(value)) throw invalid('spec.custom_tags must be an array of {"key": …, "value": …}.');
  return value.map((tag) => {
    if (typeof tag !== 'object' || tag === null || typeof tag.key !== 'string' || tag.key === '') {
      throw invalid('Each custom tag needs a non-empty "key".');
    }
    return typeof tag.value === 'string' ? { key: tag.key, value: tag.value } : { key: tag.key };
  });
}

function readRetention(value: unknown): number {
  const seconds = parseDuration(value, 'spec.history_retention_duration');
  if (seconds < 2 * DAY || seconds > 35 * DAY) {
    throw invalid(
      `spec.history_retention_duration must be between 172800s (2 days) and 3024000s (35 days), got ${formatDuration(seconds)}.`,
    );
  }
  return seconds;
}

/** Applies the given spec paths of a body to a project spec. */
function applyProjectPaths(
  ctx: ControlContext,
  spec: ProjectSpec,
  body: Record<string, unknown>,
  paths: readonly string[],
): ProjectSpec {
  const next: ProjectSpec = { ...spec, default_endpoint: { ...spec.default_endpoint } };
  const specBody = objectField(body, 'spec', 'spec');
  if (paths.some((p) => p.startsWith('spec.default_endpoint_settings.'))) {
    const settings = objectField(specBody, 'default_endpoint_settings', 'spec.default_endpoint_settings');
    const picked: Record<string, unknown> = {};
    for (const path of paths) {
      const leaf = path.replace('spec.default_endpoint_settings.', '');
      if (leaf !== path) picked[leaf] = settings[leaf];
    }
    next.default_endpoint = readEndpointSettings(
      ctx,
      picked,
      'spec.default_endpoint_settings',
      next.default_endpoint,
    );
  }
  for (const path of paths) {
    const value = valueAt(body, path);
    switch (path) {
      case 'spec.display_name': {
        const name = optionalText(specBody, 'display_name', path) ?? '';
        if (name.length < 1 || name.length > 256)
          throw invalid('spec.display_name must be 1-256 characters.');
        next.display_name = name;
        break;
      }
      case 'spec.history_retention_duration':
        next.history_retention_seconds = readRetention(value);
        break;
      case 'spec.default_branch': {
        const text = optionalText(specBody, 'default_branch', path) ?? '';
        next.default_branch = text.split('/').pop() ?? '';
        break;
      }
      case 'spec.enable_pg_native_login':
        next.enable_pg_native_login = optionalBool(specBody, 'enable_pg_native_login', path) ?? false;
        break;
      case 'spec.custom_tags':
        next.custom_tags = readTags(value);
        break;
      case 'spec.budget_policy_id':
        next.budget_policy_id = optionalText(specBody, 'budget_policy_id', path);
        break;
    }
  }
  return next;
}

/** The endpoint spec a new read-write endpoint gets from the project's defaults (and an initial spec). */
export function readWriteSpec(settings: ProjectSpec['default_endpoint']): EndpointSpec {
  return {
    endpoint_type: 'ENDPOINT_TYPE_READ_WRITE',
    min_cu: settings.min_cu,
    max_cu: settings.max_cu,
    ...(settings.suspend_timeout_seconds
      ? { suspend_timeout_seconds: settings.suspend_timeout_seconds }
      : {}),
    disabled: false,
    ...(settings.pg_settings ? { pg_settings: settings.pg_settings } : {}),
  };
}

/**
 * `POST /projects?project_id=`: the project with its `production` branch,
 * that branch's `primary` read-write endpoint, the `databricks_postgres`
 * database and the caller's role. Done when the endpoint accepts connections.
 */
export async function createProject(
  ctx: ControlContext,
  caller: IdentityRow,
  projectIdParam: string | undefined,
  input: Record<string, unknown>,
): Promise<OperationRow> {
  const projectId = requiredId(projectIdParam, 'project_id');
  const specBody = objectField(input, 'spec', 'spec');
  const pgVersion = optionalNumber(specBody, 'pg_version', 'spec.pg_version') ?? ctx.engine.pgMajorVersion;
  if (pgVersion !== ctx.engine.pgMajorVersion) {
    throw invalid(
      `spec.pg_version ${pgVersion} is not available: Pier runs Postgres ${ctx.engine.pgMajorVersion}. Leave pg_version out or set ${ctx.engine.pgMajorVersion}.`,
    );
  }
  const defaults: ProjectSpec = {
    display_name: projectId,
    pg_version: pgVersion,
    history_retention_seconds: 7 * DAY,
    default_endpoint: { min_cu: 1, max_cu: 1, suspend_timeout_seconds: DAY },
    default_branch: DEFAULT_BRANCH_ID,
    enable_pg_native_login: false,
    custom_tags: [],
  };
  const present = PROJECT_PATHS.filter(
    (path) => path !== 'spec.default_branch' && valueAt(input, path) !== undefined,
  );
  const spec = applyProjectPaths(ctx, defaults, input, present);
  const initialEndpoint = readEndpointSettings(
    ctx,
    objectField(input, 'initial_endpoint_spec', 'initial_endpoint_spec'),
    'initial_endpoint_spec',
    spec.default_endpoint,
  );
  const isProtected =
    optionalBool(
      objectField(input, 'initial_branch_spec', 'initial_branch_spec'),
      'is_protected',
      'initial_branch_spec.is_protected',
    ) ?? false;
  const database =
    optionalText(
      objectField(input, 'initial_database_spec', 'initial_database_spec'),
      'postgres_database',
      'initial_database_spec.postgres_database',
    ) ?? DEFAULT_DATABASE;
  if (database !== DEFAULT_DATABASE) {
    throw invalid(
      `initial_database_spec.postgres_database: Pier's projects start with '${DEFAULT_DATABASE}'; create other databases with create-database.`,
    );
  }
  const role = readRoleSpec(
    {
      postgres_role: caller.user_name,
      identity_type: caller.kind === 'SERVICE_PRINCIPAL' ? 'SERVICE_PRINCIPAL' : 'USER',
      membership_roles: ['DATABRICKS_SUPERUSER'],
      attributes: { createdb: true, createrole: true, bypassrls: true },
    },
    'initial_role_spec',
  );
  const operation = await ctx.store.transaction(async (tx) => {
    await tx.query('LOCK TABLE autoscaling_projects IN SHARE ROW EXCLUSIVE MODE');
    const existing = await tx.query('SELECT 1 FROM autoscaling_projects WHERE project_id = $1', [projectId]);
    if (existing.rowCount)
      throw new PierError(
        'ALREADY_EXISTS',
        `project with that id already exists: projects/${projectId}. Pick another project_id.`,
      );
    const project = await insertProject(tx, {
      uid: randomUUID(),
      project_id: projectId,
      owner: caller.user_name,
      spec,
    });
    const endpoint = readWriteSpec(initialEndpoint);
    const hostId = newHostId();
    const instance = await insertBranchInstance(tx, ctx, caller.user_name, { hostId, readWrite: endpoint });
    const branchUid = randomUUID();
    await insertBranch(tx, {
      uid: branchUid,
      project_uid: project.uid,
      branch_id: DEFAULT_BRANCH_ID,
      spec: { is_protected: isProtected, no_expiry: true },
      instance_uid: instance.uid,
      source_branch: null,
      source_branch_lsn: null,
      source_branch_time: null,
      expire_time: null,
    });
    await insertEndpoint(tx, {
      uid: randomUUID(),
      host_id: hostId,
      branch_uid: branchUid,
      endpoint_id: PRIMARY_ENDPOINT_ID,
      spec: endpoint,
      instance_uid: instance.uid,
    });
    const roleId = roleIdFor(caller.user_name);
    await insertRole(tx, { branch_uid: branchUid, role_id: roleId, spec: role });
    await insertDatabase(tx, {
      branch_uid: branchUid,
      database_id: DEFAULT_DATABASE.replaceAll('_', '-'),
      postgres_database: DEFAULT_DATABASE,
      role_id: roleId,
    });
    const op = await startOperation(tx, caller, 'Project', `projects/${projectId}`, {
      wait: { instanceUid: instance.uid, state: 'AVAILABLE' },
    });
    return { op, instanceUid: instance.uid };
  });
  ctx.reconciler.kick(operation.instanceUid);
  return operation.op;
}

export async function getProject(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
): Promise<ProjectRow> {
  return projectForCaller(ctx.store, caller, projectId);
}

export async function listProjects(
  ctx: ControlContext,
  caller: IdentityRow,
  query: Record<string, string | undefined>,
): Promise<{ rows: ProjectRow[]; nextPageToken?: string }> {
  const size = pageSize(query.page_size, 100);
  const rows = await listProjectsPage(ctx.store, {
    after: decodePageToken(query.page_token),
    limit: size + 1,
    owner: caller.is_admin ? undefined : caller.user_name,
    showDeleted: query.show_deleted === 'true',
  });
  const page = rows.slice(0, size);
  return {
    rows: page,
    nextPageToken: rows.length > size ? encodePageToken(page[page.length - 1].project_id) : undefined,
  };
}

/** `PATCH /projects/{p}?update_mask=`. */
export async function updateProjectSpec(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  mask: string | undefined,
  input: Record<string, unknown>,
): Promise<OperationRow> {
  const paths = maskPaths(mask, input, PROJECT_PATHS, PROJECT_GROUPS, ['spec.pg_version']);
  return ctx.store.transaction(async (tx) => {
    const project = await projectForCaller(tx, caller, projectId, { lock: true });
    const spec = applyProjectPaths(ctx, project.spec, input, paths);
    if (spec.default_branch !== project.spec.default_branch) {
      const branches = await listBranches(tx, project.uid);
      if (!branches.some((b) => b.branch_id === spec.default_branch)) {
        throw invalid(
          `spec.default_branch: projects/${projectId}/branches/${spec.default_branch} does not exist.`,
        );
      }
    }
    const updated = await updateProject(tx, project.uid, { spec });
    return startOperation(tx, caller, 'Project', `projects/${projectId}`, { response: projectJson(updated) });
  });
}

const projectJson = (row: ProjectRow) => projectView(row) as Record<string, unknown>;

async function syncProjectComputes(db: Queryable, project: ProjectRow, deleted: boolean) {
  const kicks: string[] = [];
  for (const branch of await listBranches(db, project.uid)) {
    kicks.push(...(await syncBranchCompute(db, branch, deleted)));
  }
  return kicks;
}

/**
 * `DELETE /projects/{p}`: soft by default (every compute stops; the data
 * stays until `purge_time`, the end of the history retention, and
 * `undelete` brings it back); `?purge=true` removes it now.
 */
export async function deleteProject(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  query: Record<string, string | undefined>,
): Promise<OperationRow> {
  const purge = query.purge === 'true';
  return changeComputes(ctx, async (tx) => {
    const project = await projectForCaller(tx, caller, projectId, { lock: true, includeDeleted: purge });
    const branches = await listBranches(tx, project.uid);
    const protectedBranch = branches.find((b) => b.spec.is_protected);
    if (protectedBranch) {
      throw badRequest(
        `cannot delete project projects/${projectId}: branch ${protectedBranch.branch_id} is protected. Unprotect it first (update-branch … spec.is_protected).`,
      );
    }
    const root = branches.find((b) => b.branch_id === project.spec.default_branch) ?? branches[0];
    if (purge) {
      const gone: string[] = [];
      for (const branch of branches) gone.push(...(await deleteBranchComputes(tx, branch)));
      await deleteProjectRow(tx, project.uid);
      const op = await startOperation(
        tx,
        caller,
        'Project',
        `projects/${projectId}`,
        root
          ? { wait: { instanceUid: root.instance_uid, state: 'GONE' } }
          : { response: { '@type': 'type.googleapis.com/google.protobuf.Empty' } },
      );
      return { op, kicks: gone };
    }
    const now = new Date();
    const marked = await updateProject(tx, project.uid, {
      delete_time: now,
      purge_time: new Date(now.getTime() + project.spec.history_retention_seconds * 1000),
    });
    const kicks = await syncProjectComputes(tx, marked, true);
    const op = await startOperation(tx, caller, 'Project', `projects/${projectId}`, {
      response: { '@type': 'type.googleapis.com/google.protobuf.Empty' },
    });
    return { op, kicks };
  });
}

/** `POST /projects/{p}/undelete`: a soft-deleted project comes back as it was, its computes as their endpoints say. */
export async function undeleteProject(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
): Promise<OperationRow> {
  return changeComputes(ctx, async (tx) => {
    const project = await projectForCaller(tx, caller, projectId, { lock: true, includeDeleted: true });
    if (!project.delete_time) throw badRequest(`projects/${projectId} is not deleted.`);
    const restored = await updateProject(tx, project.uid, { delete_time: null, purge_time: null });
    const kicks = await syncProjectComputes(tx, restored, false);
    const root = (await listBranches(tx, project.uid)).find(
      (b) => b.branch_id === project.spec.default_branch,
    );
    const op = await startOperation(
      tx,
      caller,
      'Project',
      `projects/${projectId}`,
      root
        ? { wait: { instanceUid: root.instance_uid, state: 'SETTLED' } }
        : { response: projectJson(restored) },
    );
    return { op, kicks };
  });
}
