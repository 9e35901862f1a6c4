import pg from 'pg';
import type { ControlContext } from '../control/context.js';
import { describe } from '../control/validate.js';
import { PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { branchForCaller, startOperation } from './common.js';
import { onBranchServer } from './compute-sql.js';
import { badRequest, invalid, maskPaths, notFound, objectField, optionalId, valueAt } from './fields.js';
import {
  type BranchRow,
  deleteRoleRow,
  findRole,
  insertRole,
  listDatabases,
  listRoles,
  type OperationRow,
  type RoleRow,
  type RoleSpec,
  updateRoleSpec,
} from './store.js';
import { roleView } from './view.js';

const IDENTITY_TYPES = ['USER', 'SERVICE_PRINCIPAL', 'GROUP'] as const;
const AUTH_METHODS = ['LAKEBASE_OAUTH_V1', 'PG_PASSWORD_SCRAM_SHA_256', 'NO_LOGIN'] as const;
const ROLE_PATHS = [
  'spec.attributes.bypassrls',
  'spec.attributes.createdb',
  'spec.attributes.createrole',
  'spec.membership_roles',
] as const;
const ROLE_GROUPS = { 'spec.attributes': ROLE_PATHS.slice(0, 3) };
const ROLE_IMMUTABLE = ['spec.postgres_role', 'spec.auth_method', 'spec.identity_type'];

/** A role id from a Postgres role name: `alice@example.com` → `alice-example-com`. */
export function roleIdFor(postgresRole: string): string {
  let id = postgresRole
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (!/^[a-z]/.test(id)) id = `r-${id}`;
  id = id.slice(0, 63).replace(/-+$/, '');
  return id.length >= 4 ? id : `${id}-role`.slice(0, 63);
}

/** Reads a RoleRoleSpec body (defaults as Autoscaling derives them). */
export function readRoleSpec(body: Record<string, unknown>, path: string): RoleSpec {
  const role = body.postgres_role;
  if (typeof role !== 'string' || role === '')
    throw invalid(`Field '${path}.postgres_role' is required, expected non-default value (not "")!`);
  if (role.length > 63) throw invalid(`${path}.postgres_role is longer than Postgres' 63 characters.`);
  const identity = body.identity_type;
  if (identity !== undefined && identity !== null && !IDENTITY_TYPES.includes(identity as never)) {
    throw invalid(
      `${path}.identity_type must be one of ${IDENTITY_TYPES.join(', ')}, got ${describe(identity)}.`,
    );
  }
  const managed = identity !== undefined && identity !== null;
  const auth =
    body.auth_method ??
    (managed ? (identity === 'GROUP' ? 'NO_LOGIN' : 'LAKEBASE_OAUTH_V1') : 'PG_PASSWORD_SCRAM_SHA_256');
  if (!AUTH_METHODS.includes(auth as never))
    throw invalid(`${path}.auth_method must be one of ${AUTH_METHODS.join(', ')}, got ${describe(auth)}.`);
  const membership = body.membership_roles ?? [];
  if (!Array.isArray(membership) || membership.some((m) => m !== 'DATABRICKS_SUPERUSER')) {
    throw invalid(`${path}.membership_roles may only hold "DATABRICKS_SUPERUSER".`);
  }
  const attributes = readAttributes(
    objectField(body, 'attributes', `${path}.attributes`),
    `${path}.attributes`,
    {
      bypassrls: false,
      createdb: false,
      createrole: false,
    },
  );
  return {
    postgres_role: role,
    ...(managed ? { identity_type: identity as RoleSpec['identity_type'] } : {}),
    auth_method: auth as RoleSpec['auth_method'],
    membership_roles: [...new Set(membership as string[])],
    attributes,
  };
}

function readAttributes(
  body: Record<string, unknown>,
  path: string,
  base: RoleSpec['attributes'],
): RoleSpec['attributes'] {
  const next = { ...base };
  for (const key of ['bypassrls', 'createdb', 'createrole'] as const) {
    const value = body[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'boolean') throw invalid(`${path}.${key} must be true or false.`);
    next[key] = value;
  }
  return next;
}

/** Makes the Postgres role match the spec (creating it if needed). */
async function applyRole(client: pg.Client, spec: RoleSpec, create: boolean): Promise<void> {
  const name = client.escapeIdentifier(spec.postgres_role);
  if (create) {
    const { rowCount } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [
      spec.postgres_role,
    ]);
    if (!rowCount) {
      // OAuth roles log in with database credentials only: a Postgres password never validates.
      const login =
        spec.auth_method === 'NO_LOGIN'
          ? 'NOLOGIN'
          : spec.auth_method === 'LAKEBASE_OAUTH_V1'
            ? "LOGIN VALID UNTIL '-infinity'"
            : 'LOGIN';
      await client.query(`CREATE ROLE ${name} ${login}`);
    }
  }
  const { attributes } = spec;
  await client.query(
    `ALTER ROLE ${name} ${attributes.createdb ? '' : 'NO'}CREATEDB ${attributes.createrole ? '' : 'NO'}CREATEROLE ${attributes.bypassrls ? '' : 'NO'}BYPASSRLS`,
  );
  if (spec.membership_roles.includes('DATABRICKS_SUPERUSER'))
    await client.query(`GRANT databricks_superuser TO ${name}`);
  else await client.query(`REVOKE databricks_superuser FROM ${name}`);
}

export async function createRole(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  roleIdParam: string | undefined,
  input: Record<string, unknown>,
  options: { replaceExisting?: boolean } = {},
): Promise<OperationRow> {
  if ('role' in input && !('spec' in input))
    throw invalid('The body is the Role itself ({"spec": {...}}), not wrapped in {"role": …}.');
  const branch = await branchForCaller(ctx, caller, projectId, branchId);
  const spec = readRoleSpec(objectField(input, 'spec', 'spec'), 'role.spec');
  const roleId = optionalId(roleIdParam, 'role_id') ?? roleIdFor(spec.postgres_role);
  const existing = await findRole(ctx.store, branch.uid, roleId);
  if (existing && options.replaceExisting)
    return replaceRole(ctx, caller, branch, existing, spec, objectField(input, 'spec', 'spec'));
  if (existing) throw badRequest(`role with that name already exists: ${roleId}.`);
  const clash = (await listRoles(ctx.store, branch.uid)).find(
    (r) => r.spec.postgres_role === spec.postgres_role,
  );
  if (clash)
    throw badRequest(
      `role with that name already exists: Postgres role '${spec.postgres_role}' is ${clash.role_id}.`,
    );
  await onBranchServer(ctx, branch, 'postgres', (client) => applyRole(client, spec, true));
  await insertRole(ctx.store, { branch_uid: branch.uid, role_id: roleId, spec });
  const row = await findRole(ctx.store, branch.uid, roleId);
  return startOperation(ctx.store, caller, 'Role', roleName(branch, roleId), {
    response: roleView(branch, row as RoleRow),
  });
}

/**
 * `replace_existing=true` on an existing role: its attributes and
 * membership_roles become the body's, wholly (an empty membership_roles
 * revokes DATABRICKS_SUPERUSER), as Autoscaling does. What cannot change
 * on a role (its Postgres name, identity type, auth method) must match
 * where the body sets it.
 */
async function replaceRole(
  ctx: ControlContext,
  caller: IdentityRow,
  branch: BranchRow,
  existing: RoleRow,
  wanted: RoleSpec,
  sent: Record<string, unknown>,
): Promise<OperationRow> {
  for (const field of ['postgres_role', 'identity_type', 'auth_method'] as const) {
    if (sent[field] === undefined || sent[field] === existing.spec[field]) continue;
    throw invalid(
      `role.spec.${field}: role ${existing.role_id} is ${JSON.stringify(existing.spec[field] ?? null)} and that cannot change; replace_existing replaces attributes and membership_roles only. Delete the role and create it again to change it.`,
    );
  }
  const spec: RoleSpec = {
    ...existing.spec,
    membership_roles: wanted.membership_roles,
    attributes: wanted.attributes,
  };
  return saveRole(ctx, caller, branch, existing.role_id, spec);
}

/** Applies a changed role spec to the branch's server, then records it. */
async function saveRole(
  ctx: ControlContext,
  caller: IdentityRow,
  branch: BranchRow,
  roleId: string,
  spec: RoleSpec,
): Promise<OperationRow> {
  await onBranchServer(ctx, branch, 'postgres', (client) => applyRole(client, spec, false));
  await updateRoleSpec(ctx.store, branch.uid, roleId, spec);
  const updated = (await findRole(ctx.store, branch.uid, roleId)) as RoleRow;
  return startOperation(ctx.store, caller, 'Role', roleName(branch, roleId), {
    response: roleView(branch, updated),
  });
}

const roleName = (branch: BranchRow, roleId: string) =>
  `projects/${branch.project_id}/branches/${branch.branch_id}/roles/${roleId}`;

export async function getRole(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  roleId: string,
) {
  const branch = await branchForCaller(ctx, caller, projectId, branchId);
  const role = await findRole(ctx.store, branch.uid, roleId);
  if (!role) throw notFound(`role id not found: ${roleName(branch, roleId)} does not exist.`);
  return { branch, role };
}

export async function listBranchRoles(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
) {
  const branch = await branchForCaller(ctx, caller, projectId, branchId);
  return { branch, roles: await listRoles(ctx.store, branch.uid) };
}

/** PATCH a role: leaf masks on `spec.attributes.*` and `spec.membership_roles` only. */
export async function updateRole(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  roleId: string,
  mask: string | undefined,
  input: Record<string, unknown>,
): Promise<OperationRow> {
  const paths = maskPaths(mask, input, ROLE_PATHS, ROLE_GROUPS, ROLE_IMMUTABLE);
  const { branch, role } = await getRole(ctx, caller, projectId, branchId, roleId);
  const spec: RoleSpec = { ...role.spec, attributes: { ...role.spec.attributes } };
  for (const path of paths) {
    const value = valueAt(input, path);
    if (path === 'spec.membership_roles') {
      if (!Array.isArray(value) || value.some((m) => m !== 'DATABRICKS_SUPERUSER'))
        throw invalid('spec.membership_roles may only hold "DATABRICKS_SUPERUSER".');
      spec.membership_roles = [...new Set(value as string[])];
    } else {
      if (typeof value !== 'boolean') throw invalid(`${path} must be true or false.`);
      spec.attributes[path.split('.')[2] as keyof RoleSpec['attributes']] = value;
    }
  }
  return saveRole(ctx, caller, branch, roleId, spec);
}

/** DELETE a role; `reassign_owned_to` (a role id or Postgres role) takes over what it owns. */
export async function deleteRole(
  ctx: ControlContext,
  caller: IdentityRow,
  projectId: string,
  branchId: string,
  roleId: string,
  reassignTo: string | undefined,
): Promise<OperationRow> {
  const { branch, role } = await getRole(ctx, caller, projectId, branchId, roleId);
  const target = reassignTo
    ? ((await findRole(ctx.store, branch.uid, reassignTo.split('/').pop() ?? ''))?.spec.postgres_role ??
      reassignTo)
    : undefined;
  const owned = (await listDatabases(ctx.store, branch.uid)).find((d) => d.role_id === roleId);
  if (owned) {
    throw badRequest(
      `role ${roleId} owns database ${owned.database_id}: give the database another owner (update-database … spec.role) first.`,
    );
  }
  await onBranchServer(ctx, branch, 'postgres', async (client, connectionTo) => {
    const name = client.escapeIdentifier(role.spec.postgres_role);
    const databases = await client.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE datallowconn',
    );
    try {
      for (const { datname } of databases.rows) {
        const inDb = new pg.Client(await connectionTo(datname));
        await inDb.connect();
        try {
          if (target) await inDb.query(`REASSIGN OWNED BY ${name} TO ${inDb.escapeIdentifier(target)}`);
          await inDb.query(`DROP OWNED BY ${name}`);
        } finally {
          await inDb.end();
        }
      }
      await client.query(`DROP ROLE IF EXISTS ${name}`);
    } catch (error) {
      throw new PierError(
        'BAD_REQUEST',
        `Role ${roleId} could not be dropped: ${(error as Error).message}. Pass --reassign-owned-to with a role that takes over its objects.`,
        { cause: error },
      );
    }
  });
  await deleteRoleRow(ctx.store, branch.uid, roleId);
  return startOperation(ctx.store, caller, 'Role', roleName(branch, roleId), {
    response: { '@type': 'type.googleapis.com/google.protobuf.Empty' },
  });
}
