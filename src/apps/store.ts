import { createHash } from 'node:crypto';
import type { SealedSecret } from '../auth/master-key.js';
import type { Queryable } from '../store/store.js';
import type { EnvEntry } from './app-yaml.js';
import type { DatabaseResource } from './resources.js';

type ComputeSpec = 'ACTIVE' | 'STOPPED';
export type AppState = 'DEPLOYING' | 'RUNNING' | 'CRASHED' | 'UNAVAILABLE';
export type ComputeState = 'ACTIVE' | 'STARTING' | 'STOPPING' | 'STOPPED' | 'ERROR';
export type DeploymentState = 'IN_PROGRESS' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

/** What the supervisor of the app's node observed last. Written by the supervisor only. */
export interface AppStatus {
  app_state?: AppState;
  app_message?: string;
  compute_state?: ComputeState;
  compute_message?: string;
  /** The running process (a process group leader), its start time in clock ticks since boot, and its run id. */
  pid?: number;
  pid_start?: string;
  run_id?: string;
  deployment_id?: string;
  port?: number;
  /** The API URL and proxy port the process was given: a run started against others is replaced, not adopted. */
  endpoints?: string;
  /** Restarts after crashes since the app last ran steadily. */
  restarts?: number;
}

export interface AppRow {
  name: string;
  id: string;
  description: string | null;
  creator: string;
  updater: string;
  node_id: string;
  service_principal_id: string | null;
  client_id: string;
  client_secret: SealedSecret;
  resources: DatabaseResource[];
  compute: ComputeSpec;
  active_deployment_id: string | null;
  pending_deployment_id: string | null;
  default_source_code_path: string | null;
  status: AppStatus;
  created_at: Date;
  updated_at: Date;
}

export interface DeploymentRow {
  deployment_id: string;
  app_name: string;
  source_code_path: string;
  mode: string;
  creator: string;
  command: string[];
  env: EnvEntry[];
  state: DeploymentState;
  message: string | null;
  created_at: Date;
  updated_at: Date;
}

const APP_COLUMNS = `name, id::text, description, creator, updater, node_id, service_principal_id::text, client_id,
  client_secret, resources, compute, active_deployment_id, pending_deployment_id, default_source_code_path,
  status, created_at, updated_at`;
const DEPLOYMENT_COLUMNS = `deployment_id, app_name, source_code_path, mode, creator, command, env, state, message,
  created_at, updated_at`;

export async function insertApp(
  db: Queryable,
  app: Pick<
    AppRow,
    | 'name'
    | 'id'
    | 'description'
    | 'creator'
    | 'node_id'
    | 'service_principal_id'
    | 'client_id'
    | 'client_secret'
    | 'resources'
    | 'compute'
  >,
): Promise<AppRow> {
  const { rows } = await db.query<AppRow>(
    `INSERT INTO apps (name, id, description, creator, updater, node_id, service_principal_id, client_id, client_secret,
                       resources, compute, status)
     VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ${APP_COLUMNS}`,
    [
      app.name,
      app.id,
      app.description,
      app.creator,
      app.node_id,
      app.service_principal_id,
      app.client_id,
      JSON.stringify(app.client_secret),
      JSON.stringify(app.resources),
      app.compute,
      JSON.stringify({ compute_state: app.compute, app_state: 'UNAVAILABLE' } satisfies AppStatus),
    ],
  );
  return rows[0];
}

export async function findApp(db: Queryable, name: string, lock = false): Promise<AppRow | undefined> {
  const { rows } = await db.query<AppRow>(
    `SELECT ${APP_COLUMNS} FROM apps WHERE name = $1${lock ? ' FOR UPDATE' : ''}`,
    [name],
  );
  return rows[0];
}

/** A page of apps in name order after `afterName`; only `creator`'s unless undefined (admins see all). */
export async function listAppsPage(
  db: Queryable,
  options: { afterName: string; limit: number; creator?: string },
): Promise<AppRow[]> {
  const { rows } = await db.query<AppRow>(
    `SELECT ${APP_COLUMNS} FROM apps WHERE name > $1 AND ($3::text IS NULL OR creator = $3)
      ORDER BY name LIMIT $2`,
    [options.afterName, options.limit, options.creator ?? null],
  );
  return rows;
}

/** The apps the supervisor of `nodeId` runs. */
export async function listNodeApps(db: Queryable, nodeId: string): Promise<AppRow[]> {
  const { rows } = await db.query<AppRow>(
    `SELECT ${APP_COLUMNS} FROM apps WHERE node_id = $1 ORDER BY name`,
    [nodeId],
  );
  return rows;
}

/** Changes what was asked of an app (never its status). */
export async function updateAppSpec(
  db: Queryable,
  name: string,
  change: Partial<
    Pick<
      AppRow,
      | 'description'
      | 'resources'
      | 'compute'
      | 'pending_deployment_id'
      | 'default_source_code_path'
      | 'updater'
    >
  >,
): Promise<AppRow | undefined> {
  const { rows } = await db.query<AppRow>(
    `UPDATE apps SET
       description = CASE WHEN $2 THEN $3 ELSE description END,
       resources = COALESCE($4::jsonb, resources),
       compute = COALESCE($5, compute),
       pending_deployment_id = CASE WHEN $6 THEN $7 ELSE pending_deployment_id END,
       default_source_code_path = COALESCE($8, default_source_code_path),
       updater = COALESCE($9, updater),
       updated_at = now()
     WHERE name = $1 RETURNING ${APP_COLUMNS}`,
    [
      name,
      'description' in change,
      change.description ?? null,
      change.resources ? JSON.stringify(change.resources) : null,
      change.compute ?? null,
      'pending_deployment_id' in change,
      change.pending_deployment_id ?? null,
      change.default_source_code_path ?? null,
      change.updater ?? null,
    ],
  );
  return rows[0];
}

/** The supervisor's report: the app's status, and with `activeDeploymentId` the deployment now running. */
export async function writeAppStatus(
  db: Queryable,
  name: string,
  status: AppStatus,
  deployments: { activeDeploymentId?: string; clearPending?: string } = {},
): Promise<void> {
  await db.query(
    `UPDATE apps SET status = $2,
        active_deployment_id = COALESCE($3, active_deployment_id),
        pending_deployment_id = CASE WHEN pending_deployment_id = $4 THEN NULL ELSE pending_deployment_id END
      WHERE name = $1`,
    [name, JSON.stringify(status), deployments.activeDeploymentId ?? null, deployments.clearPending ?? null],
  );
}

/** A new service principal for the app (its old one was deleted). */
export async function replaceAppPrincipal(
  db: Queryable,
  name: string,
  principal: Pick<AppRow, 'service_principal_id' | 'client_id' | 'client_secret'>,
): Promise<AppRow | undefined> {
  const { rows } = await db.query<AppRow>(
    `UPDATE apps SET service_principal_id = $2, client_id = $3, client_secret = $4, updated_at = now()
      WHERE name = $1 RETURNING ${APP_COLUMNS}`,
    [name, principal.service_principal_id, principal.client_id, JSON.stringify(principal.client_secret)],
  );
  return rows[0];
}

export async function deleteAppRow(db: Queryable, name: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM apps WHERE name = $1', [name]);
  return (rowCount ?? 0) > 0;
}

export async function insertDeployment(
  db: Queryable,
  row: Pick<
    DeploymentRow,
    | 'deployment_id'
    | 'app_name'
    | 'source_code_path'
    | 'mode'
    | 'creator'
    | 'command'
    | 'env'
    | 'state'
    | 'message'
  >,
): Promise<DeploymentRow> {
  const { rows } = await db.query<DeploymentRow>(
    `INSERT INTO app_deployments (deployment_id, app_name, source_code_path, mode, creator, command, env, state, message)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${DEPLOYMENT_COLUMNS}`,
    [
      row.deployment_id,
      row.app_name,
      row.source_code_path,
      row.mode,
      row.creator,
      JSON.stringify(row.command),
      JSON.stringify(row.env),
      row.state,
      row.message,
    ],
  );
  return rows[0];
}

export async function findDeployment(
  db: Queryable,
  appName: string,
  deploymentId: string,
): Promise<DeploymentRow | undefined> {
  const { rows } = await db.query<DeploymentRow>(
    `SELECT ${DEPLOYMENT_COLUMNS} FROM app_deployments WHERE app_name = $1 AND deployment_id = $2`,
    [appName, deploymentId],
  );
  return rows[0];
}

/** Deployments newest first; `before` continues after a deployment id of the previous page. */
export async function listDeploymentsPage(
  db: Queryable,
  appName: string,
  options: { before?: string; limit: number },
): Promise<DeploymentRow[]> {
  const { rows } = await db.query<DeploymentRow>(
    `SELECT ${DEPLOYMENT_COLUMNS} FROM app_deployments
      WHERE app_name = $1
        AND ($2::text IS NULL OR (created_at, deployment_id) <
             (SELECT created_at, deployment_id FROM app_deployments WHERE deployment_id = $2))
      ORDER BY created_at DESC, deployment_id DESC LIMIT $3`,
    [appName, options.before ?? null, options.limit],
  );
  return rows;
}

export async function finishDeployment(
  db: Queryable,
  deploymentId: string,
  state: DeploymentState,
  message: string,
): Promise<void> {
  await db.query(
    `UPDATE app_deployments SET state = $2, message = $3, updated_at = clock_timestamp()
      WHERE deployment_id = $1 AND state = 'IN_PROGRESS'`,
    [deploymentId, state, message],
  );
}

/**
 * The workspace id Pier reports (`DATABRICKS_WORKSPACE_ID`): a number made
 * from the store's id, the same for every Pier process of one store.
 */
export async function readWorkspaceId(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ value: string }>(
    "SELECT value #>> '{}' AS value FROM settings WHERE key = 'store_id'",
  );
  const digest = createHash('sha256')
    .update(rows[0]?.value ?? 'pier')
    .digest();
  // 15 decimal digits, as Databricks workspace ids have.
  return String((digest.readBigUInt64BE(0) % 900_000_000_000_000n) + 100_000_000_000_000n);
}
