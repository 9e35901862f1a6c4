import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { readPgRoles, roleRecords } from '../access/roles-store.js';
import type { ControlContext } from '../control/context.js';
import { PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { instanceForCaller } from '../instances/permissions.js';
import { reportedState } from '../instances/state.js';
import { type InstanceRow, listChildRefs, updateInstanceSpec } from '../instances/store.js';
import type { Queryable } from '../store/store.js';
import { DEFAULT_BRANCH_ID, DEFAULT_DATABASE, PRIMARY_ENDPOINT_ID } from './projects.js';
import { roleIdFor } from './roles.js';
import {
  type EndpointSpec,
  findProject,
  insertBranch,
  insertDatabase,
  insertEndpoint,
  insertProject,
  insertRole,
  type ProjectSpec,
  type RoleSpec,
} from './store.js';

/** Databricks' mapping of Provisioned tiers (16 GB per CU) to Autoscaling ranges (2 GB per CU). */
const CU_RANGE: Record<string, [number, number]> = {
  CU_1: [4, 8],
  CU_2: [8, 16],
  CU_4: [16, 32],
  CU_8: [64, 64],
};

interface LiveCatalog {
  roles: { name: string; spec: RoleSpec }[];
  databases: { name: string; owner: string }[];
}

/** What the instance's Postgres holds: its roles (as the roles API sees them) and databases. */
async function readLiveCatalog(ctx: ControlContext, instance: InstanceRow): Promise<LiveCatalog> {
  const records = await roleRecords(ctx.store, instance.uid);
  const client = new pg.Client(ctx.engine.superuserConnection(instance.uid, 'postgres', 'pier upgrade'));
  await client.connect();
  try {
    const roles = (await readPgRoles(client)).map((role) => {
      const record = records.get(role.rolname);
      const managed = record && record.identity_type !== 'PG_ONLY' ? record.identity_type : undefined;
      const identity = managed ?? (role.rolname === instance.creator ? 'USER' : undefined);
      const spec: RoleSpec = {
        postgres_role: role.rolname,
        ...(identity ? { identity_type: identity } : {}),
        auth_method: !role.rolcanlogin
          ? 'NO_LOGIN'
          : identity
            ? 'LAKEBASE_OAUTH_V1'
            : 'PG_PASSWORD_SCRAM_SHA_256',
        membership_roles: role.superuser_member ? ['DATABRICKS_SUPERUSER'] : [],
        attributes: {
          bypassrls: role.rolbypassrls,
          createdb: role.rolcreatedb,
          createrole: role.rolcreaterole,
        },
      };
      return { name: role.rolname, spec };
    });
    const { rows } = await client.query<{ datname: string; owner: string }>(
      `SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database
        WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY datname`,
    );
    return { roles, databases: rows.map((row) => ({ name: row.datname, owner: row.owner })) };
  } finally {
    await client.end().catch(() => {});
  }
}

const databaseIdFor = (name: string) => roleIdFor(name).replace(/^r-/, 'db-');

/**
 * `PATCH /api/2.0/database/instances/{name}/upgrade`: turns a Provisioned
 * instance into a Lakebase Autoscaling project in place. Nothing moves on
 * disk and the server keeps running: the instance's data directory becomes
 * the `production` branch, its server the `primary` endpoint (same host as
 * `read_write_dns`), its roles and databases are recorded as the branch's,
 * its point-in-time children become branches. The instance stays visible to
 * the Provisioned API for reads and credentials, but refuses changes there.
 * While the roles and databases are read it reports UPGRADING.
 */
export async function upgradeInstance(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
): Promise<InstanceRow> {
  const instance = await ctx.store.transaction(async (tx) => {
    const row = await instanceForCaller(tx, caller, name, 'CAN_MANAGE', { lock: true });
    if (row.spec.upgraded_to) {
      throw new PierError(
        'INVALID_STATE',
        `Database instance '${name}' was already upgraded: it is project ${row.spec.upgraded_to}.`,
      );
    }
    if (row.spec.parent) {
      throw new PierError(
        'INVALID_STATE',
        `Database instance '${name}' is a child instance: upgrade its parent '${row.spec.parent.name}'; it becomes a branch of it.`,
      );
    }
    const state = reportedState(row);
    if (state !== 'AVAILABLE') {
      throw new PierError(
        'INVALID_STATE',
        `Database instance '${name}' is ${state}; it must be AVAILABLE to upgrade (start it first).`,
      );
    }
    if (await findProject(tx, name)) {
      throw new PierError(
        'RESOURCE_ALREADY_EXISTS',
        `A Lakebase Autoscaling project '${name}' already exists; the upgrade makes a project of the instance's name. Delete or rename that project first.`,
      );
    }
    return updateInstanceSpec(tx, row.uid, { ...row.spec, upgrading: true });
  });
  try {
    const live = await readLiveCatalog(ctx, instance);
    return await ctx.store.transaction(async (tx) => {
      await recordProject(ctx, tx, instance, live);
      const current = await instanceForCaller(tx, caller, name, 'CAN_MANAGE', { lock: true });
      const { upgrading: _, ...spec } = current.spec;
      return updateInstanceSpec(tx, instance.uid, { ...spec, upgraded_to: `projects/${name}` });
    });
  } catch (error) {
    await ctx.store.transaction(async (tx) => {
      const current = await instanceForCaller(tx, caller, name, 'CAN_MANAGE', { lock: true });
      const { upgrading: _, ...spec } = current.spec;
      await updateInstanceSpec(tx, instance.uid, spec);
    });
    throw error;
  }
}

async function recordProject(ctx: ControlContext, db: Queryable, instance: InstanceRow, live: LiveCatalog) {
  const [min, max] = CU_RANGE[instance.spec.capacity] ?? [1, 1];
  const spec: ProjectSpec = {
    display_name: instance.name,
    pg_version: ctx.engine.pgMajorVersion,
    history_retention_seconds: instance.spec.retention_window_in_days * 86_400,
    // A Provisioned instance never suspended; its computes keep running as before.
    default_endpoint: { min_cu: min, max_cu: max },
    default_branch: DEFAULT_BRANCH_ID,
    enable_pg_native_login: instance.spec.enable_pg_native_login,
    custom_tags: instance.spec.custom_tags,
  };
  const project = await insertProject(db, {
    uid: randomUUID(),
    project_id: instance.name,
    owner: instance.creator,
    spec,
  });
  const endpoint: EndpointSpec = {
    endpoint_type: 'ENDPOINT_TYPE_READ_WRITE',
    min_cu: min,
    max_cu: max,
    disabled: instance.spec.stopped,
  };
  const branches = [
    {
      instanceUid: instance.uid,
      branchId: DEFAULT_BRANCH_ID,
      hostId: instance.name,
      source: null as string | null,
    },
  ];
  for (const child of await listChildRefs(db, [instance.uid])) {
    branches.push({
      instanceUid: child.uid,
      branchId: child.name,
      hostId: child.name,
      source: DEFAULT_BRANCH_ID,
    });
  }
  for (const branch of branches) {
    const branchUid = randomUUID();
    await insertBranch(db, {
      uid: branchUid,
      project_uid: project.uid,
      branch_id: branch.branchId,
      spec: { is_protected: false, no_expiry: true },
      instance_uid: branch.instanceUid,
      source_branch: branch.source,
      source_branch_lsn: null,
      source_branch_time: null,
      expire_time: null,
    });
    await insertEndpoint(db, {
      uid: randomUUID(),
      host_id: branch.hostId,
      branch_uid: branchUid,
      endpoint_id: PRIMARY_ENDPOINT_ID,
      spec: endpoint,
      instance_uid: branch.instanceUid,
    });
    const roleIds = new Map<string, string>();
    for (const role of live.roles) {
      const roleId = roleIdFor(role.name);
      roleIds.set(role.name, roleId);
      await insertRole(db, { branch_uid: branchUid, role_id: roleId, spec: role.spec });
    }
    for (const database of live.databases) {
      // A database the bootstrap superuser owns (databricks_postgres) is shown as the creator's.
      const owner =
        roleIds.get(database.owner) ?? roleIds.get(instance.creator) ?? roleIdFor(instance.creator);
      const databaseId =
        database.name === DEFAULT_DATABASE ? 'databricks-postgres' : databaseIdFor(database.name);
      await insertDatabase(db, {
        branch_uid: branchUid,
        database_id: databaseId,
        postgres_database: database.name,
        role_id: owner,
      });
    }
  }
}
