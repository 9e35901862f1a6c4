import type { SyncOutcome } from './pipeline.js';
import type { SyncedTableStatus } from './store.js';

/**
 * The synced table's status after each step of the worker, as the SDK's
 * SyncedTableStatus. `null` removes a field when merged into the stored one.
 */
type StatusPatch = { [K in keyof SyncedTableStatus]: SyncedTableStatus[K] | null };

export function snapshotRunning(synced: number, total?: number): StatusPatch {
  return {
    detailed_state: 'SYNCED_TABLE_PROVISIONING_INITIAL_SNAPSHOT',
    message: total
      ? `Copying the initial snapshot: ${synced} of ${total} rows.`
      : `Copying the initial snapshot: ${synced} rows.`,
    provisioning_status: { initial_pipeline_sync_progress: rowProgress(synced, total) },
  };
}

/** An update of a synced table that was synced before has started (or, with `progress`, moved on). */
export function updating(
  policy: string,
  previous: SyncedTableStatus,
  progress?: { synced: number; total?: number },
): StatusPatch {
  if (policy === 'CONTINUOUS') return { detailed_state: 'SYNCED_TABLE_ONLINE_CONTINUOUS_UPDATE' };
  return {
    detailed_state: 'SYNCED_TABLE_ONLINE_TRIGGERED_UPDATE',
    // The whole object is replaced when merged: what the last update left stays in it.
    triggered_update_status: {
      ...(previous.triggered_update_status as Record<string, unknown> | undefined),
      ...(progress ? { triggered_update_progress: rowProgress(progress.synced, progress.total) } : {}),
    },
  };
}

/** The SDK's SyncedTablePipelineProgress for rows copied so far. */
function rowProgress(synced: number, total?: number) {
  return {
    synced_row_count: synced,
    ...(total ? { total_row_count: total, sync_progress_completion: Math.min(1, synced / total) } : {}),
  };
}

/**
 * A pass succeeded. CONTINUOUS tables report `continuous_update_status`
 * (with the initial snapshot's final progress once one ran), SNAPSHOT and
 * TRIGGERED tables `triggered_update_status`; the other one is removed (the
 * policy may have changed).
 */
export function synced(
  policy: string,
  outcome: SyncOutcome,
  times: { start: Date; end: Date; commitTimestamp?: Date },
  previous: SyncedTableStatus = {},
): StatusPatch {
  const version = outcome.deltaVersion;
  const lastProcessed = { last_processed_commit_version: version, timestamp: times.end.toISOString() };
  const initial =
    outcome.kind === 'snapshot'
      ? {
          initial_pipeline_sync_progress: {
            ...rowProgress(outcome.rows, outcome.rows),
            sync_progress_completion: 1,
          },
        }
      : pick(previous.continuous_update_status, 'initial_pipeline_sync_progress');
  return {
    ...(policy === 'CONTINUOUS'
      ? { continuous_update_status: { ...initial, ...lastProcessed }, triggered_update_status: null }
      : { triggered_update_status: lastProcessed, continuous_update_status: null }),
    detailed_state:
      policy === 'CONTINUOUS'
        ? 'SYNCED_TABLE_ONLINE_CONTINUOUS_UPDATE'
        : 'SYNCED_TABLE_ONLINE_NO_PENDING_UPDATE',
    message: `Synced Delta version ${version} of the source.`,
    last_sync: {
      delta_table_sync_info: {
        delta_commit_version: version,
        ...(times.commitTimestamp ? { delta_commit_timestamp: times.commitTimestamp.toISOString() } : {}),
      },
      sync_start_timestamp: times.start.toISOString(),
      sync_end_timestamp: times.end.toISOString(),
    },
    ...(outcome.kind !== 'up-to-date' ? { skipped_null_keys: outcome.skippedNullKeys || null } : {}),
    provisioning_status: null,
    failed_status: null,
  };
}

export function failed(message: string, everSynced: boolean, lastVersion?: number): StatusPatch {
  return {
    detailed_state: everSynced ? 'SYNCED_TABLE_ONLINE_PIPELINE_FAILED' : 'SYNCED_TABLE_OFFLINE_FAILED',
    message,
    failed_status: {
      ...(lastVersion !== undefined ? { last_processed_commit_version: lastVersion } : {}),
      timestamp: new Date().toISOString(),
    },
  };
}

function pick(from: unknown, field: string): Record<string, unknown> {
  const value = (from as Record<string, unknown> | undefined)?.[field];
  return value === undefined ? {} : { [field]: value };
}
