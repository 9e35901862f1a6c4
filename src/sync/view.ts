import type { PipelineRecord } from './pipelines.js';
import type { PipelineUpdateRow } from './pipelines-store.js';
import type { SyncedTableRecord } from './service.js';

/** The SDK's SyncedDatabaseTable. */
export function syncedTableView({ table, instanceName }: SyncedTableRecord) {
  const { skipped_null_keys, ...status } = table.status;
  return {
    name: table.name,
    database_instance_name: instanceName,
    logical_database_name: table.database_name,
    effective_database_instance_name: instanceName,
    effective_logical_database_name: table.database_name,
    spec: table.spec,
    data_synchronization_status: {
      ...status,
      pipeline_id: table.pipeline_id,
      ...(skipped_null_keys
        ? {
            message:
              `${status.message ?? ''} ${skipped_null_keys} source rows with a null primary key were skipped.`.trim(),
          }
        : {}),
    },
    unity_catalog_provisioning_state: 'ACTIVE',
  };
}

/** The pipelines API's UpdateInfo. */
export function updateView(update: PipelineUpdateRow) {
  return {
    update_id: update.id,
    pipeline_id: update.pipeline_id,
    state: update.state,
    cause: update.cause,
    full_refresh: update.full_refresh,
    creation_time: update.created_at.getTime(),
    ...(update.message ? { message: update.message } : {}),
  };
}

/** The pipelines API's GetPipelineResponse (what synced tables need of it). */
export function pipelineView({ pipeline, tables, latestUpdates }: PipelineRecord) {
  const running = latestUpdates.some((u) => u.state === 'RUNNING' || u.state === 'QUEUED');
  const continuous = tables.some((t) => t.spec.scheduling_policy === 'CONTINUOUS');
  const failed = tables.some((t) => String(t.status.detailed_state ?? '').endsWith('FAILED'));
  return {
    pipeline_id: pipeline.id,
    name: `synced tables: ${tables.map((t) => t.name).join(', ') || '(none)'}`,
    creator_user_name: pipeline.creator,
    run_as_user_name: pipeline.creator,
    state: failed ? 'FAILED' : running || continuous ? 'RUNNING' : 'IDLE',
    health: failed ? 'UNHEALTHY' : 'HEALTHY',
    spec: { id: pipeline.id, continuous },
    latest_updates: latestUpdates.map((u) => ({
      update_id: u.id,
      state: u.state,
      creation_time: u.created_at.toISOString(),
    })),
  };
}
