import { childRefView, parentRefView } from '../backups/view.js';
import type { ControlConfig } from '../control/context.js';
import type { InstancePermissions } from './permissions.js';
import { reportedState } from './state.js';
import type { ChildRef, InstanceRow } from './store.js';

/**
 * The single mapping from stored rows to the JSON Databricks clients expect
 * (field names as in the SDK's `DatabaseInstance`).
 */
export function instanceView(
  row: InstanceRow,
  config: ControlConfig,
  pgMajorVersion: number,
  options: { withInputs?: boolean; children?: ChildRef[] } = {},
) {
  const { spec } = row;
  const state = reportedState(row);
  const view: Record<string, unknown> = {
    name: row.name,
    uid: row.uid,
    capacity: spec.capacity,
    effective_capacity: spec.capacity,
    stopped: spec.stopped,
    effective_stopped: state === 'STOPPED',
    state,
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
  if (spec.parent) view.parent_instance_ref = parentRefView(spec.parent, row.status.effective_lsn);
  if (options.children?.length) view.child_instance_refs = options.children.map(childRefView);
  if (spec.usage_policy_id) {
    view.usage_policy_id = spec.usage_policy_id;
    view.effective_usage_policy_id = spec.usage_policy_id;
  }
  // Pier's own field: why an instance is FAILED and what to do. (Other reconciler
  // errors are retried and logged; their text is internal and stays there.)
  if (state === 'FAILED' && row.status.message) view.status_message = row.status.message;
  // Databricks returns the input-only custom_tags on create and update responses.
  if (options.withInputs) view.custom_tags = spec.custom_tags;
  return view;
}

/** What `read_write_dns` holds: the instance's loopback address, or `<name>.<suffix>`. */
export function instanceDnsName(row: Pick<InstanceRow, 'name' | 'address'>, config: ControlConfig): string {
  if (config.dnsSuffix) return `${row.name}.${config.dnsSuffix}`;
  return row.address ?? `${row.name}.localhost`;
}

/** Databricks' ObjectPermissions shape for `/permissions/database-instances/{name}`. */
export function instancePermissionsView({ instance, rows }: InstancePermissions) {
  return {
    object_id: `/database-instances/${instance.name}`,
    object_type: 'database-instance',
    access_control_list: [
      ...rows.map((row) => ({
        user_name: row.principal,
        all_permissions: [{ permission_level: row.permission_level, inherited: false }],
      })),
      {
        group_name: 'admins',
        all_permissions: [
          {
            permission_level: 'CAN_MANAGE',
            inherited: true,
            inherited_from_object: ['/database-instances/'],
          },
        ],
      },
    ],
  };
}

/** The levels an instance grants, for `…/permissionLevels`. */
export function permissionLevelsView() {
  return {
    permission_levels: [
      {
        permission_level: 'CAN_USE',
        description: 'Can connect to the instance and generate database credentials.',
      },
      {
        permission_level: 'CAN_MANAGE',
        description: 'Can change, stop, start, resize and delete the instance.',
      },
    ],
  };
}
