import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { readPgRoles, roleRecords } from '../access/roles-store.js';
import type { ControlContext } from '../control/context.js';
import { PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { instanceForCaller } from '../instances/permissions.js';
import { reportedState } from '../instances/state.js';
import {
  findInstanceByName,
  type InstanceRow,
  listChildRefs,
  updateInstanceSpec,
} from '../instances/store.js';
import { instanceConnection } from '../nodes/service.js';
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
  const client = new pg.Client(await instanceConnection(ctx, instance, 'postgres', 'pier upgrade'));
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

/** One instance of the upgrade and the branch it becomes. */
interface Member {
  row: InstanceRow;
  branchId: string;
  /** The branch it was made from (its parent instance's), none for the root. */
  source: string | null;
  lsn: string | null;
  time: string | null;
}

/**
 * The instance and its point-in-time descendants, parents before children,
 * each locked and checked: all must be running, since their roles and
 * databases are read from their servers.
 */
async function membersOf(db: Queryable, root: InstanceRow): Promise<Member[]> {
  const members: Member[] = [{ row: root, branchId: DEFAULT_BRANCH_ID, source: null, lsn: null, time: null }];
  const branchOf = new Map([[root.uid, DEFAULT_BRANCH_ID]]);
  for (let level = [root.uid]; level.length > 0; ) {
    const next: string[] = [];
    for (const child of await listChildRefs(db, level)) {
      const row = await findInstanceByName(db, child.name, true);
      if (!row) continue;
      const state = reportedState(row);
      if (state !== 'AVAILABLE') {
        throw new PierError(
          'INVALID_STATE',
          `Child instance '${child.name}' of '${root.name}' is ${state}; it becomes a branch of the project and its roles are read from its server, so it must be AVAILABLE. Start it (or delete it) first.`,
        );
      }
      if (child.name === DEFAULT_BRANCH_ID) {
        throw new PierError(
          'INVALID_STATE',
          `Child instance '${child.name}' of '${root.name}' would become a branch named like the project's default branch '${DEFAULT_BRANCH_ID}'. Delete it or make a copy of it under another name first.`,
        );
      }
      members.push({
        row,
        branchId: child.name,
        source: branchOf.get(child.parent_uid) ?? DEFAULT_BRANCH_ID,
        lsn: child.effective_lsn ?? child.parent.lsn ?? null,
        time: child.parent.branch_time ?? null,
      });
      branchOf.set(child.uid, child.name);
      next.push(child.uid);
    }
    level = next;
  }
  return members;
}

/** Sets or clears `upgrading` on every member, in one transaction. */
async function markUpgrading(ctx: ControlContext, members: Member[], upgrading: boolean) {
  await ctx.store.transaction(async (tx) => {
    for (const { row } of members) {
      const current = await findInstanceByName(tx, row.name, true);
      if (!current) continue;
      const { upgrading: _, ...spec } = current.spec;
      await updateInstanceSpec(tx, row.uid, upgrading ? { ...spec, upgrading: true } : spec);
    }
  });
}

/**
 * `PATCH /api/2.0/database/instances/{name}/upgrade`: turns a Provisioned
 * instance into a Lakebase Autoscaling project in place. Nothing moves on
 * disk and the servers keep running: the instance's data directory becomes
 * the `production` branch, its server the `primary` endpoint (same host as
 * `read_write_dns`); its point-in-time children (and theirs) become branches
 * named like them, made from their parent's branch at the child's LSN; each
 * branch records the roles and databases its own server holds. The
 * instances stay visible to the Provisioned API for reads and credentials,
 * but refuse changes there. While the catalogs are read they report UPGRADING.
 */
export async function upgradeInstance(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
): Promise<InstanceRow> {
  const members = await ctx.store.transaction(async (tx) => {
    const row = await instanceForCaller(tx, caller, name, 'CAN_MANAGE', { lock: true });
    if (row.spec.upgraded_to) {
      throw new PierError(
        'INVALID_STATE',
        `Database instance '${name}' was already upgraded: it is ${row.spec.upgraded_to}.`,
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
    return membersOf(tx, row);
  });
  await markUpgrading(ctx, members, true);
  try {
    const catalogs = new Map<string, LiveCatalog>();
    for (const member of members) catalogs.set(member.row.uid, await readLiveCatalog(ctx, member.row));
    return await ctx.store.transaction(async (tx) => {
      const project = await recordProject(ctx, tx, members[0].row);
      for (const member of members) {
        await recordBranch(tx, project.uid, member, catalogs.get(member.row.uid) as LiveCatalog);
      }
      let upgraded: InstanceRow | undefined;
      for (const member of members) {
        const current = (await findInstanceByName(tx, member.row.name, true)) as InstanceRow;
        const { upgrading: _, ...spec } = current.spec;
        const target =
          member.source === null ? `projects/${name}` : `projects/${name}/branches/${member.branchId}`;
        const row = await updateInstanceSpec(tx, member.row.uid, { ...spec, upgraded_to: target });
        upgraded ??= row;
      }
      return upgraded as InstanceRow;
    });
  } catch (error) {
    await markUpgrading(ctx, members, false);
    throw error;
  }
}

async function recordProject(ctx: ControlContext, db: Queryable, instance: InstanceRow) {
  const [min, max] = cuRange(instance);
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
  return insertProject(db, {
    uid: randomUUID(),
    project_id: instance.name,
    owner: instance.creator,
    spec,
  });
}

const cuRange = (instance: InstanceRow): [number, number] => CU_RANGE[instance.spec.capacity] ?? [1, 1];

/** One member's branch, its primary endpoint (the member's server) and what its server holds. */
async function recordBranch(db: Queryable, projectUid: string, member: Member, live: LiveCatalog) {
  const instance = member.row;
  const [min, max] = cuRange(instance);
  const branchUid = randomUUID();
  await insertBranch(db, {
    uid: branchUid,
    project_uid: projectUid,
    branch_id: member.branchId,
    spec: { is_protected: false, no_expiry: true },
    instance_uid: instance.uid,
    source_branch: member.source,
    source_branch_lsn: member.lsn,
    source_branch_time: member.time === null ? null : new Date(member.time),
    expire_time: null,
  });
  const endpoint: EndpointSpec = {
    endpoint_type: 'ENDPOINT_TYPE_READ_WRITE',
    min_cu: min,
    max_cu: max,
    disabled: instance.spec.stopped,
  };
  await insertEndpoint(db, {
    uid: randomUUID(),
    host_id: instance.name,
    branch_uid: branchUid,
    endpoint_id: PRIMARY_ENDPOINT_ID,
    spec: endpoint,
    instance_uid: instance.uid,
  });
  const roleIds = new Map<string, string>();
  for (const role of live.roles) {
    const roleId = roleIdFor(role.name);
    roleIds.set(role.name, roleId);
    await insertRole(db, { branch_uid: branchUid, role_id: roleId, spec: role.spec });
  }
  for (const database of live.databases) {
    // A database the bootstrap superuser owns (databricks_postgres) is shown as the creator's.
    const owner = roleIds.get(database.owner) ?? roleIds.get(instance.creator) ?? roleIdFor(instance.creator);
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
