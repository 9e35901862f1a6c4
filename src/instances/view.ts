import type { ControlConfig } from '../control/context.js';
import type { IdentityRow } from '../identities/store.js';
import type { InstanceRow } from './store.js';

/**
 * The single mapping from stored rows to the JSON Databricks clients expect
 * (field names as in the SDK's `DatabaseInstance`).
 */
export function instanceView(
  row: InstanceRow,
  config: ControlConfig,
  pgMajorVersion: number,
  options: { withInputs?: boolean } = {},
) {
  const { spec } = row;
  const view: Record<string, unknown> = {
    name: row.name,
    uid: row.uid,
    capacity: spec.capacity,
    effective_capacity: spec.capacity,
    stopped: spec.stopped,
    effective_stopped: row.state === 'STOPPED',
    state: row.state,
    creator: row.creator,
    creation_time: row.created_at.toISOString(),
    pg_version: `PG_VERSION_${pgMajorVersion}`,
    read_write_dns: instanceDnsName(row, config),
    effective_custom_tags: spec.custom_tags,
    retention_window_in_days: spec.retention_window_in_days,
    effective_retention_window_in_days: spec.retention_window_in_days,
    node_count: spec.node_count,
    effective_node_count: spec.node_count,
    enable_readable_secondaries: spec.enable_readable_secondaries,
    effective_enable_readable_secondaries: spec.enable_readable_secondaries,
    enable_pg_native_login: spec.enable_pg_native_login,
    effective_enable_pg_native_login: spec.enable_pg_native_login,
  };
  if (spec.usage_policy_id) {
    view.usage_policy_id = spec.usage_policy_id;
    view.effective_usage_policy_id = spec.usage_policy_id;
  }
  // Pier's own field: why an instance is FAILED and what to do. (Other reconciler
  // errors are retried and logged; their text is internal and stays there.)
  if (row.state === 'FAILED' && row.status.message) view.status_message = row.status.message;
  // Databricks returns the input-only custom_tags on create and update responses.
  if (options.withInputs) view.custom_tags = spec.custom_tags;
  return view;
}

/** What `read_write_dns` holds: the instance's loopback address, or `<name>.<suffix>`. */
export function instanceDnsName(row: Pick<InstanceRow, 'name' | 'address'>, config: ControlConfig): string {
  if (config.dnsSuffix) return `${row.name}.${config.dnsSuffix}`;
  return row.address ?? `${row.name}.localhost`;
}

/** SCIM User resource. */
export function userView(row: IdentityRow) {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    id: row.id,
    userName: row.user_name,
    displayName: row.display_name ?? row.user_name,
    active: row.active,
    emails: [{ value: row.user_name, type: 'work', primary: true }],
    groups: row.is_admin ? [{ display: 'admins', value: 'admins' }] : [],
    entitlements: row.is_admin
      ? [{ value: 'workspace-access' }, { value: 'allow-cluster-create' }]
      : [{ value: 'workspace-access' }],
  };
}
