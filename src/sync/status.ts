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
    provisioning_status: {
      initial_pipeline_sync_progress: {
        synced_row_count: synced,
        ...(total ? { total_row_count: total, sync_progress_completion: Math.min(1, synced / total) } : {}),
      },
    },
  };
}

export function updating(policy: string): StatusPatch {
  return {
    detailed_state:
      policy === 'CONTINUOUS'
        ? 'SYNCED_TABLE_ONLINE_CONTINUOUS_UPDATE'
        : 'SYNCED_TABLE_ONLINE_TRIGGERED_UPDATE',
  };
}

export function synced(
  policy: string,
  outcome: SyncOutcome,
  times: { start: Date; end: Date; commitTimestamp?: Date },
): StatusPatch {
  const version = outcome.deltaVersion;
  return {
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
