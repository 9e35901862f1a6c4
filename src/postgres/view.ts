import { reportedState } from '../instances/state.js';
import type { InstanceRow } from '../instances/store.js';
import { formatDuration } from './fields.js';
import type { BranchRow, DatabaseRow, EndpointRow, OperationRow, ProjectRow, RoleRow } from './store.js';

/**
 * The one mapping from rows to Lakebase Autoscaling JSON (`/api/2.0/postgres`,
 * field names as in the SDKs' `postgres` service). As on Databricks, a
 * resource is answered with `status` (what is in effect), not its `spec`.
 */

const time = (date: Date | null | undefined) => (date ? date.toISOString() : undefined);

function endpointSettingsView(settings: ProjectRow['spec']['default_endpoint']) {
  return {
    autoscaling_limit_min_cu: settings.min_cu,
    autoscaling_limit_max_cu: settings.max_cu,
    ...(settings.suspend_timeout_seconds
      ? { suspend_timeout_duration: formatDuration(settings.suspend_timeout_seconds) }
      : { no_suspension: true }),
    ...(settings.pg_settings ? { pg_settings: settings.pg_settings } : {}),
  };
}

export function projectView(
  project: ProjectRow,
  extra: { syntheticSizeBytes?: number; lastActive?: Date } = {},
) {
  const { spec } = project;
  return {
    name: `projects/${project.project_id}`,
    uid: project.uid,
    create_time: time(project.create_time),
    update_time: time(project.update_time),
    ...(project.delete_time
      ? { delete_time: time(project.delete_time), purge_time: time(project.purge_time) }
      : {}),
    status: {
      display_name: spec.display_name,
      pg_version: spec.pg_version,
      history_retention_duration: formatDuration(spec.history_retention_seconds),
      default_endpoint_settings: endpointSettingsView(spec.default_endpoint),
      default_branch: `projects/${project.project_id}/branches/${spec.default_branch}`,
      enable_pg_native_login: spec.enable_pg_native_login,
      owner: project.owner,
      custom_tags: spec.custom_tags,
      ...(spec.budget_policy_id ? { budget_policy_id: spec.budget_policy_id } : {}),
      branch_logical_size_limit_bytes: 8796093022208,
      ...(extra.syntheticSizeBytes !== undefined
        ? { synthetic_storage_size_bytes: extra.syntheticSizeBytes }
        : {}),
      ...(extra.lastActive ? { compute_last_active_time: time(extra.lastActive) } : {}),
    },
  };
}

/** What a branch reports: READY once its data exists, INIT while it is being copied. */
function branchState(instance: InstanceRow | undefined): string {
  if (!instance || instance.spec.deleted) return 'DELETED';
  return instance.status.provisioned ? 'READY' : 'INIT';
}

export interface BranchRecord {
  branch: BranchRow;
  instance: InstanceRow | undefined;
  isDefault: boolean;
  logicalSizeBytes?: number;
}

export function branchView({ branch, instance, isDefault, logicalSizeBytes }: BranchRecord) {
  const state = branch.delete_time ? 'DELETED' : branchState(instance);
  const lsn = branch.source_branch_lsn ?? instance?.status.source_lsn ?? instance?.status.effective_lsn;
  return {
    name: `projects/${branch.project_id}/branches/${branch.branch_id}`,
    parent: `projects/${branch.project_id}`,
    uid: branch.uid,
    create_time: time(branch.create_time),
    update_time: time(branch.update_time),
    status: {
      branch_id: branch.branch_id,
      current_state: state,
      ...(state === 'INIT' ? { pending_state: 'READY' } : {}),
      state_change_time: time(branch.update_time),
      default: isDefault,
      is_protected: branch.spec.is_protected,
      ...(logicalSizeBytes !== undefined ? { logical_size_bytes: logicalSizeBytes } : {}),
      ...(branch.expire_time ? { expire_time: time(branch.expire_time) } : {}),
      ...(branch.delete_time
        ? { delete_time: time(branch.delete_time), purge_time: time(branch.purge_time) }
        : {}),
      ...(branch.source_branch
        ? {
            source_branch: `projects/${branch.project_id}/branches/${branch.source_branch}`,
            ...(lsn ? { source_branch_lsn: lsn } : {}),
            ...(branch.source_branch_time ? { source_branch_time: time(branch.source_branch_time) } : {}),
          }
        : {}),
    },
  };
}

/** Endpoint states: ACTIVE (running), IDLE (suspended or disabled), INIT (starting), DEGRADED (failed). */
function endpointState(instance: InstanceRow | undefined): string {
  if (!instance) return 'DEGRADED';
  const state = reportedState(instance);
  if (state === 'AVAILABLE') return 'ACTIVE';
  if (state === 'STOPPED') return 'IDLE';
  if (state === 'FAILED') return 'DEGRADED';
  return 'INIT';
}

export interface EndpointRecord {
  endpoint: EndpointRow;
  instance: InstanceRow | undefined;
  /** Where clients connect (the proxy, by SNI or per-endpoint address). */
  host: string;
  lastActive?: Date;
}

export function endpointView({ endpoint, instance, host, lastActive }: EndpointRecord) {
  const { spec } = endpoint;
  const state = endpointState(instance);
  const wanted = spec.disabled ? 'IDLE' : instance?.spec.suspended ? 'IDLE' : 'ACTIVE';
  const readWrite = spec.endpoint_type === 'ENDPOINT_TYPE_READ_WRITE';
  return {
    name: `projects/${endpoint.project_id}/branches/${endpoint.branch_id}/endpoints/${endpoint.endpoint_id}`,
    parent: `projects/${endpoint.project_id}/branches/${endpoint.branch_id}`,
    uid: endpoint.host_id,
    create_time: time(endpoint.create_time),
    update_time: time(endpoint.update_time),
    status: {
      endpoint_id: endpoint.endpoint_id,
      endpoint_type: spec.endpoint_type,
      current_state: state,
      ...(state !== wanted ? { pending_state: wanted } : {}),
      autoscaling_limit_min_cu: spec.min_cu,
      autoscaling_limit_max_cu: spec.max_cu,
      ...(spec.suspend_timeout_seconds
        ? { suspend_timeout_duration: formatDuration(spec.suspend_timeout_seconds) }
        : { no_suspension: true }),
      disabled: spec.disabled,
      group: { min: 1, max: 1, enable_readable_secondaries: false },
      settings: { pg_settings: spec.pg_settings ?? {} },
      ...(lastActive ? { last_active_time: time(lastActive) } : {}),
      hosts: readWrite ? { host } : { read_only_host: host, host },
    },
  };
}

/**
 * `…/endpoints/{e}/compute-instances/{id}`: the one server behind an
 * endpoint (Pier runs no pool of replicas behind one host). Its id is the
 * compute's uid; a failed server is reported IDLE, the enum having no
 * failed state.
 */
export function computeInstanceView({ endpoint, instance, host }: EndpointRecord) {
  const endpointName = `projects/${endpoint.project_id}/branches/${endpoint.branch_id}/endpoints/${endpoint.endpoint_id}`;
  const state = endpointState(instance);
  const current = state === 'DEGRADED' ? 'IDLE' : state;
  const wanted = endpoint.spec.disabled || instance?.spec.suspended ? 'IDLE' : 'ACTIVE';
  return {
    name: `${endpointName}/compute-instances/${endpoint.instance_uid}`,
    compute_instance_id: endpoint.instance_uid,
    compute_host: host,
    current_state: current,
    ...(current !== wanted ? { pending_state: wanted } : {}),
    role: endpoint.spec.endpoint_type === 'ENDPOINT_TYPE_READ_WRITE' ? 'READ_WRITE' : 'READ_ONLY',
  };
}

export function databaseView(branch: BranchRow, row: DatabaseRow) {
  const parent = `projects/${branch.project_id}/branches/${branch.branch_id}`;
  return {
    name: `${parent}/databases/${row.database_id}`,
    parent,
    create_time: time(row.create_time),
    update_time: time(row.update_time),
    status: {
      database_id: row.database_id,
      postgres_database: row.postgres_database,
      role: `${parent}/roles/${row.role_id}`,
    },
  };
}

export function roleView(branch: BranchRow, row: RoleRow) {
  const parent = `projects/${branch.project_id}/branches/${branch.branch_id}`;
  const { spec } = row;
  return {
    name: `${parent}/roles/${row.role_id}`,
    parent,
    create_time: time(row.create_time),
    update_time: time(row.update_time),
    status: {
      role_id: row.role_id,
      postgres_role: spec.postgres_role,
      identity_type: spec.identity_type ?? 'IDENTITY_TYPE_UNSPECIFIED',
      auth_method: spec.auth_method,
      membership_roles: spec.membership_roles,
      attributes: spec.attributes,
    },
  };
}

/** An Operation: `{name, done, metadata, response?, error?}`. */
export function operationView(row: OperationRow) {
  return {
    name: row.name,
    done: row.done,
    metadata: { '@type': `type.googleapis.com/databricks.postgres.v1.${row.metadata_type}OperationMetadata` },
    ...(row.response ? { response: row.response } : {}),
    ...(row.error ? { error: row.error } : {}),
  };
}

/** What a finished delete answers with: never null (the SDKs fail on a done operation without one). */
export const EMPTY_RESPONSE = { '@type': 'type.googleapis.com/google.protobuf.Empty' };
