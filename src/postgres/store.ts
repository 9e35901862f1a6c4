import type { Queryable } from '../store/store.js';

/** A project's settings as the user last set them (`ProjectSpec`, durations in seconds). */
export interface ProjectSpec {
  display_name: string;
  pg_version: number;
  history_retention_seconds: number;
  default_endpoint: {
    min_cu: number;
    max_cu: number;
    /** Undefined: `no_suspension`. */
    suspend_timeout_seconds?: number;
    pg_settings?: Record<string, string>;
  };
  /** The default branch's id. */
  default_branch: string;
  enable_pg_native_login: boolean;
  custom_tags: { key: string; value?: string }[];
  budget_policy_id?: string;
}

export interface ProjectRow {
  uid: string;
  project_id: string;
  owner: string;
  spec: ProjectSpec;
  create_time: Date;
  update_time: Date;
  delete_time: Date | null;
  purge_time: Date | null;
}

export interface BranchSpec {
  is_protected: boolean;
  /** How the expiry was asked for, echoed in status. */
  no_expiry?: boolean;
}

export interface BranchRow {
  uid: string;
  project_uid: string;
  project_id: string;
  branch_id: string;
  spec: BranchSpec;
  /** The instance holding the branch's data directory; its server is the read-write endpoint. */
  instance_uid: string;
  /** The source branch's id (null for a project's first branch). */
  source_branch: string | null;
  source_branch_lsn: string | null;
  source_branch_time: Date | null;
  expire_time: Date | null;
  create_time: Date;
  update_time: Date;
  /** Soft-deleted: hidden, its computes stopped, its data kept until purge_time. */
  delete_time?: Date | null;
  purge_time?: Date | null;
}

export type EndpointType = 'ENDPOINT_TYPE_READ_WRITE' | 'ENDPOINT_TYPE_READ_ONLY';

export interface EndpointSpec {
  endpoint_type: EndpointType;
  min_cu: number;
  max_cu: number;
  /** Undefined: `no_suspension`. */
  suspend_timeout_seconds?: number;
  disabled: boolean;
  pg_settings?: Record<string, string>;
}

export interface EndpointRow {
  uid: string;
  /** The endpoint's host name label (`ep-…`), also its instance's name. */
  host_id: string;
  branch_uid: string;
  branch_id: string;
  project_id: string;
  endpoint_id: string;
  spec: EndpointSpec;
  instance_uid: string;
  create_time: Date;
  update_time: Date;
}

export interface DatabaseRow {
  branch_uid: string;
  database_id: string;
  postgres_database: string;
  role_id: string;
  create_time: Date;
  update_time: Date;
}

export interface RoleSpec {
  postgres_role: string;
  identity_type?: 'USER' | 'SERVICE_PRINCIPAL' | 'GROUP';
  auth_method: 'LAKEBASE_OAUTH_V1' | 'PG_PASSWORD_SCRAM_SHA_256' | 'NO_LOGIN';
  membership_roles: string[];
  attributes: { bypassrls: boolean; createdb: boolean; createrole: boolean };
}

export interface RoleRow {
  branch_uid: string;
  role_id: string;
  spec: RoleSpec;
  create_time: Date;
  update_time: Date;
}

// Projects.

const PROJECT = 'uid::text, project_id, owner, spec, create_time, update_time, delete_time, purge_time';

export async function insertProject(
  db: Queryable,
  row: Pick<ProjectRow, 'uid' | 'project_id' | 'owner' | 'spec'>,
) {
  const { rows } = await db.query<ProjectRow>(
    `INSERT INTO autoscaling_projects (uid, project_id, owner, spec) VALUES ($1, $2, $3, $4) RETURNING ${PROJECT}`,
    [row.uid, row.project_id, row.owner, JSON.stringify(row.spec)],
  );
  return rows[0];
}

export async function findProject(
  db: Queryable,
  projectId: string,
  lock = false,
): Promise<ProjectRow | undefined> {
  const { rows } = await db.query<ProjectRow>(
    `SELECT ${PROJECT} FROM autoscaling_projects WHERE project_id = $1${lock ? ' FOR UPDATE' : ''}`,
    [projectId],
  );
  return rows[0];
}

export async function listProjectsPage(
  db: Queryable,
  options: { after: string; limit: number; owner?: string; showDeleted: boolean },
): Promise<ProjectRow[]> {
  const { rows } = await db.query<ProjectRow>(
    `SELECT ${PROJECT} FROM autoscaling_projects
      WHERE project_id > $1 AND ($3::text IS NULL OR lower(owner) = lower($3)) AND ($4 OR delete_time IS NULL)
      ORDER BY project_id LIMIT $2`,
    [options.after, options.limit, options.owner ?? null, options.showDeleted],
  );
  return rows;
}

export async function updateProject(
  db: Queryable,
  uid: string,
  changes: { spec?: ProjectSpec; delete_time?: Date | null; purge_time?: Date | null },
): Promise<ProjectRow> {
  const { rows } = await db.query<ProjectRow>(
    `UPDATE autoscaling_projects SET spec = COALESCE($2, spec),
            delete_time = CASE WHEN $3 THEN $4::timestamptz ELSE delete_time END,
            purge_time = CASE WHEN $3 THEN $5::timestamptz ELSE purge_time END,
            update_time = now()
      WHERE uid = $1 RETURNING ${PROJECT}`,
    [
      uid,
      changes.spec ? JSON.stringify(changes.spec) : null,
      'delete_time' in changes,
      changes.delete_time ?? null,
      changes.purge_time ?? null,
    ],
  );
  return rows[0];
}

export async function deleteProjectRow(db: Queryable, uid: string): Promise<void> {
  await db.query('DELETE FROM autoscaling_projects WHERE uid = $1', [uid]);
}

/** Soft-deleted projects whose purge time has come. */
export async function listPurgeableProjects(db: Queryable): Promise<ProjectRow[]> {
  const { rows } = await db.query<ProjectRow>(
    `SELECT ${PROJECT} FROM autoscaling_projects WHERE purge_time IS NOT NULL AND purge_time <= now()`,
  );
  return rows;
}

// Branches.

const BRANCH = `b.uid::text, b.project_uid::text, p.project_id, b.branch_id, b.spec, b.instance_uid::text,
  b.source_branch, b.source_branch_lsn, b.source_branch_time, b.expire_time, b.create_time, b.update_time,
  b.delete_time, b.purge_time`;

export async function insertBranch(
  db: Queryable,
  row: Omit<BranchRow, 'project_id' | 'create_time' | 'update_time'>,
): Promise<void> {
  await db.query(
    `INSERT INTO autoscaling_branches (uid, project_uid, branch_id, spec, instance_uid, source_branch, source_branch_lsn,
       source_branch_time, expire_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [
      row.uid,
      row.project_uid,
      row.branch_id,
      JSON.stringify(row.spec),
      row.instance_uid,
      row.source_branch,
      row.source_branch_lsn,
      row.source_branch_time,
      row.expire_time,
    ],
  );
}

export async function findBranch(
  db: Queryable,
  projectUid: string,
  branchId: string,
  lock = false,
): Promise<BranchRow | undefined> {
  const { rows } = await db.query<BranchRow>(
    `SELECT ${BRANCH} FROM autoscaling_branches b JOIN autoscaling_projects p ON p.uid = b.project_uid
      WHERE b.project_uid = $1 AND b.branch_id = $2${lock ? ' FOR UPDATE OF b' : ''}`,
    [projectUid, branchId],
  );
  return rows[0];
}

export async function listBranches(
  db: Queryable,
  projectUid: string,
  options: { after?: string; limit?: number; hideDeleted?: boolean } = {},
): Promise<BranchRow[]> {
  const { rows } = await db.query<BranchRow>(
    `SELECT ${BRANCH} FROM autoscaling_branches b JOIN autoscaling_projects p ON p.uid = b.project_uid
      WHERE b.project_uid = $1 AND b.branch_id > $2 AND NOT ($4 AND b.delete_time IS NOT NULL)
      ORDER BY b.branch_id LIMIT $3`,
    [projectUid, options.after ?? '', options.limit ?? 10_000, options.hideDeleted ?? false],
  );
  return rows;
}

/** Soft-deletes (times set) or brings back (null) a branch. */
export async function setBranchDeleted(
  db: Queryable,
  uid: string,
  times: { delete_time: Date; purge_time: Date } | null,
): Promise<void> {
  await db.query(
    'UPDATE autoscaling_branches SET delete_time = $2, purge_time = $3, update_time = now() WHERE uid = $1',
    [uid, times?.delete_time ?? null, times?.purge_time ?? null],
  );
}

/** Soft-deleted branches whose purge time has come. */
export async function listPurgeableBranches(db: Queryable): Promise<BranchRow[]> {
  const { rows } = await db.query<BranchRow>(
    `SELECT ${BRANCH} FROM autoscaling_branches b JOIN autoscaling_projects p ON p.uid = b.project_uid
      WHERE b.purge_time IS NOT NULL AND b.purge_time <= now()`,
  );
  return rows;
}

export async function updateBranch(
  db: Queryable,
  uid: string,
  spec: BranchSpec,
  expireTime: Date | null,
): Promise<void> {
  await db.query(
    'UPDATE autoscaling_branches SET spec = $2, expire_time = $3, update_time = now() WHERE uid = $1',
    [uid, JSON.stringify(spec), expireTime],
  );
}

export async function deleteBranchRow(db: Queryable, uid: string): Promise<void> {
  await db.query('DELETE FROM autoscaling_branches WHERE uid = $1', [uid]);
}

/** Branches past their expire_time (never a protected or default one: the service refuses those). */
export async function listExpiredBranches(db: Queryable): Promise<BranchRow[]> {
  const { rows } = await db.query<BranchRow>(
    `SELECT ${BRANCH} FROM autoscaling_branches b JOIN autoscaling_projects p ON p.uid = b.project_uid
      WHERE b.expire_time IS NOT NULL AND b.expire_time <= now() AND p.delete_time IS NULL`,
  );
  return rows;
}

// Endpoints.

const ENDPOINT = `e.uid::text, e.host_id, e.branch_uid::text, b.branch_id, p.project_id, e.endpoint_id, e.spec,
  e.instance_uid::text, e.create_time, e.update_time`;
const ENDPOINT_FROM =
  'autoscaling_endpoints e JOIN autoscaling_branches b ON b.uid = e.branch_uid JOIN autoscaling_projects p ON p.uid = b.project_uid';

export async function insertEndpoint(
  db: Queryable,
  row: Pick<EndpointRow, 'uid' | 'host_id' | 'branch_uid' | 'endpoint_id' | 'spec' | 'instance_uid'>,
): Promise<void> {
  await db.query(
    `INSERT INTO autoscaling_endpoints (uid, host_id, branch_uid, endpoint_id, spec, instance_uid) VALUES ($1, $2, $3, $4, $5, $6)`,
    [row.uid, row.host_id, row.branch_uid, row.endpoint_id, JSON.stringify(row.spec), row.instance_uid],
  );
}

export async function findEndpoint(
  db: Queryable,
  branchUid: string,
  endpointId: string,
  lock = false,
): Promise<EndpointRow | undefined> {
  const { rows } = await db.query<EndpointRow>(
    `SELECT ${ENDPOINT} FROM ${ENDPOINT_FROM} WHERE e.branch_uid = $1 AND e.endpoint_id = $2${lock ? ' FOR UPDATE OF e' : ''}`,
    [branchUid, endpointId],
  );
  return rows[0];
}

export async function listEndpoints(
  db: Queryable,
  branchUid: string,
  options: { after?: string; limit?: number } = {},
): Promise<EndpointRow[]> {
  const { rows } = await db.query<EndpointRow>(
    `SELECT ${ENDPOINT} FROM ${ENDPOINT_FROM} WHERE e.branch_uid = $1 AND e.endpoint_id > $2
      ORDER BY e.endpoint_id LIMIT $3`,
    [branchUid, options.after ?? '', options.limit ?? 10_000],
  );
  return rows;
}

export async function updateEndpointSpec(db: Queryable, uid: string, spec: EndpointSpec): Promise<void> {
  await db.query('UPDATE autoscaling_endpoints SET spec = $2, update_time = now() WHERE uid = $1', [
    uid,
    JSON.stringify(spec),
  ]);
}

export async function deleteEndpointRow(db: Queryable, uid: string): Promise<void> {
  await db.query('DELETE FROM autoscaling_endpoints WHERE uid = $1', [uid]);
}

// Databases and roles.

const DATABASE = 'branch_uid::text, database_id, postgres_database, role_id, create_time, update_time';

export async function insertDatabase(
  db: Queryable,
  row: Pick<DatabaseRow, 'branch_uid' | 'database_id' | 'postgres_database' | 'role_id'>,
): Promise<void> {
  await db.query(
    'INSERT INTO autoscaling_databases (branch_uid, database_id, postgres_database, role_id) VALUES ($1, $2, $3, $4)',
    [row.branch_uid, row.database_id, row.postgres_database, row.role_id],
  );
}

export async function findDatabase(db: Queryable, branchUid: string, databaseId: string) {
  const { rows } = await db.query<DatabaseRow>(
    `SELECT ${DATABASE} FROM autoscaling_databases WHERE branch_uid = $1 AND database_id = $2`,
    [branchUid, databaseId],
  );
  return rows[0] as DatabaseRow | undefined;
}

export async function listDatabases(db: Queryable, branchUid: string, after = '', limit = 10_000) {
  const { rows } = await db.query<DatabaseRow>(
    `SELECT ${DATABASE} FROM autoscaling_databases WHERE branch_uid = $1 AND database_id > $2 ORDER BY database_id LIMIT $3`,
    [branchUid, after, limit],
  );
  return rows;
}

export async function updateDatabase(
  db: Queryable,
  branchUid: string,
  databaseId: string,
  changes: { postgres_database: string; role_id: string },
): Promise<void> {
  await db.query(
    `UPDATE autoscaling_databases SET postgres_database = $3, role_id = $4, update_time = now()
      WHERE branch_uid = $1 AND database_id = $2`,
    [branchUid, databaseId, changes.postgres_database, changes.role_id],
  );
}

export async function deleteDatabaseRow(db: Queryable, branchUid: string, databaseId: string): Promise<void> {
  await db.query('DELETE FROM autoscaling_databases WHERE branch_uid = $1 AND database_id = $2', [
    branchUid,
    databaseId,
  ]);
}

const ROLE = 'branch_uid::text, role_id, spec, create_time, update_time';

export async function insertRole(
  db: Queryable,
  row: Pick<RoleRow, 'branch_uid' | 'role_id' | 'spec'>,
): Promise<void> {
  await db.query('INSERT INTO autoscaling_roles (branch_uid, role_id, spec) VALUES ($1, $2, $3)', [
    row.branch_uid,
    row.role_id,
    JSON.stringify(row.spec),
  ]);
}

export async function findRole(db: Queryable, branchUid: string, roleId: string) {
  const { rows } = await db.query<RoleRow>(
    `SELECT ${ROLE} FROM autoscaling_roles WHERE branch_uid = $1 AND role_id = $2`,
    [branchUid, roleId],
  );
  return rows[0] as RoleRow | undefined;
}

export async function listRoles(db: Queryable, branchUid: string, after = '', limit = 10_000) {
  const { rows } = await db.query<RoleRow>(
    `SELECT ${ROLE} FROM autoscaling_roles WHERE branch_uid = $1 AND role_id > $2 ORDER BY role_id LIMIT $3`,
    [branchUid, after, limit],
  );
  return rows;
}

export async function updateRoleSpec(db: Queryable, branchUid: string, roleId: string, spec: RoleSpec) {
  await db.query(
    'UPDATE autoscaling_roles SET spec = $3, update_time = now() WHERE branch_uid = $1 AND role_id = $2',
    [branchUid, roleId, JSON.stringify(spec)],
  );
}

export async function deleteRoleRow(db: Queryable, branchUid: string, roleId: string): Promise<void> {
  await db.query('DELETE FROM autoscaling_roles WHERE branch_uid = $1 AND role_id = $2', [branchUid, roleId]);
}

/** A new branch starts with its parent's databases and roles (its data is a copy). */
export async function copyCatalogRows(db: Queryable, fromBranch: string, toBranch: string): Promise<void> {
  await db.query(
    `INSERT INTO autoscaling_databases (branch_uid, database_id, postgres_database, role_id)
     SELECT $2, database_id, postgres_database, role_id FROM autoscaling_databases WHERE branch_uid = $1`,
    [fromBranch, toBranch],
  );
  await db.query(
    `INSERT INTO autoscaling_roles (branch_uid, role_id, spec) SELECT $2, role_id, spec FROM autoscaling_roles WHERE branch_uid = $1`,
    [fromBranch, toBranch],
  );
}

// Operations.

export interface OperationRow {
  name: string;
  owner: string;
  metadata_type: string;
  resource_name: string;
  wait_instance: string | null;
  /** AVAILABLE, STOPPED (running or not, as asked), GONE (deleted) or null (done at once). */
  wait_state: string | null;
  done: boolean;
  response: Record<string, unknown> | null;
  error: Record<string, unknown> | null;
  create_time: Date;
}

const OPERATION =
  'name, owner, metadata_type, resource_name, wait_instance::text, wait_state, done, response, error, create_time';

export async function insertOperation(
  db: Queryable,
  row: Omit<OperationRow, 'create_time'>,
): Promise<OperationRow> {
  const { rows } = await db.query<OperationRow>(
    `INSERT INTO autoscaling_operations (name, owner, metadata_type, resource_name, wait_instance, wait_state, done, response, error)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${OPERATION}`,
    [
      row.name,
      row.owner,
      row.metadata_type,
      row.resource_name,
      row.wait_instance,
      row.wait_state,
      row.done,
      row.response ? JSON.stringify(row.response) : null,
      row.error ? JSON.stringify(row.error) : null,
    ],
  );
  return rows[0];
}

/** By its full name, or (`operations/<uuid>`, as Databricks' CLI test server also routes) by its id alone. */
export async function findOperation(db: Queryable, name: string): Promise<OperationRow | undefined> {
  const id = /^operations\/([0-9a-f-]{36})$/.exec(name)?.[1];
  const { rows } = id
    ? await db.query<OperationRow>(`SELECT ${OPERATION} FROM autoscaling_operations WHERE name LIKE $1`, [
        `%/operations/${id}`,
      ])
    : await db.query<OperationRow>(`SELECT ${OPERATION} FROM autoscaling_operations WHERE name = $1`, [name]);
  return rows[0];
}

export async function finishOperation(
  db: Queryable,
  name: string,
  result: { response?: Record<string, unknown>; error?: Record<string, unknown> },
): Promise<void> {
  await db.query('UPDATE autoscaling_operations SET done = true, response = $2, error = $3 WHERE name = $1', [
    name,
    result.response ? JSON.stringify(result.response) : null,
    result.error ? JSON.stringify(result.error) : null,
  ]);
}

/** Finished operations older than a week are forgotten. */
export async function purgeOldOperations(db: Queryable): Promise<void> {
  await db.query("DELETE FROM autoscaling_operations WHERE done AND create_time < now() - interval '7 days'");
}
