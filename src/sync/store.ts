import type { Queryable } from '../store/store.js';
import type { SchedulingPolicy } from './pipeline.js';

/** A synced table's spec as the API was given it (the SDK's SyncedTableSpec). */
export interface SyncedTableSpec {
  source_table_full_name: string;
  primary_key_columns: string[];
  scheduling_policy: SchedulingPolicy;
  timeseries_key?: string;
  create_database_objects_if_missing?: boolean;
  existing_pipeline_id?: string;
  new_pipeline_spec?: Record<string, unknown>;
}

/**
 * What the sync worker reports (the SDK's SyncedTableStatus without
 * `pipeline_id`, which comes from the row). Written by the worker only.
 */
export interface SyncedTableStatus {
  detailed_state?: string;
  message?: string;
  last_sync?: {
    delta_table_sync_info?: { delta_commit_version?: number; delta_commit_timestamp?: string };
    sync_start_timestamp?: string;
    sync_end_timestamp?: string;
  };
  provisioning_status?: {
    initial_pipeline_sync_progress?: {
      synced_row_count?: number;
      total_row_count?: number;
      sync_progress_completion?: number;
    };
  };
  failed_status?: { last_processed_commit_version?: number; timestamp?: string };
  /** Rows of the source left out because a key column was null (last pass). */
  skipped_null_keys?: number;
  [field: string]: unknown;
}

export interface SyncedTableRow {
  id: string;
  /** Three-part catalog name. */
  name: string;
  instance_uid: string;
  database_name: string;
  target_schema: string;
  target_table: string;
  spec: SyncedTableSpec;
  source_table_full_name: string;
  /** Resolved from the catalog when the table was created. */
  source_location: string;
  pipeline_id: string;
  status: SyncedTableStatus;
  creator: string;
  created_at: Date;
}

const COLUMNS = `id::text, name, instance_uid::text, database_name, target_schema, target_table, spec,
  source_table_full_name, source_location, pipeline_id::text, status, creator, created_at`;

export async function insertSyncedTable(
  db: Queryable,
  row: Omit<SyncedTableRow, 'status' | 'created_at'>,
): Promise<SyncedTableRow> {
  const { rows } = await db.query<SyncedTableRow>(
    `INSERT INTO synced_tables (id, name, instance_uid, database_name, target_schema, target_table, spec,
                                source_table_full_name, source_location, pipeline_id, status, creator)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ${COLUMNS}`,
    [
      row.id,
      row.name,
      row.instance_uid,
      row.database_name,
      row.target_schema,
      row.target_table,
      JSON.stringify(row.spec),
      row.source_table_full_name,
      row.source_location,
      row.pipeline_id,
      JSON.stringify({ detailed_state: 'SYNCED_TABLE_PROVISIONING', message: 'Waiting for the first sync.' }),
      row.creator,
    ],
  );
  return rows[0];
}

export async function findSyncedTable(
  db: Queryable,
  name: string,
  lock = false,
): Promise<SyncedTableRow | undefined> {
  const { rows } = await db.query<SyncedTableRow>(
    `SELECT ${COLUMNS} FROM synced_tables WHERE name = $1${lock ? ' FOR UPDATE' : ''}`,
    [name],
  );
  return rows[0];
}

export async function listSyncedTablesOfInstance(
  db: Queryable,
  instanceUid: string,
  afterName: string,
  limit: number,
): Promise<SyncedTableRow[]> {
  const { rows } = await db.query<SyncedTableRow>(
    `SELECT ${COLUMNS} FROM synced_tables WHERE instance_uid = $1 AND name > $2 ORDER BY name LIMIT $3`,
    [instanceUid, afterName, limit],
  );
  return rows;
}

export async function listSyncedTablesOfPipeline(
  db: Queryable,
  pipelineId: string,
): Promise<SyncedTableRow[]> {
  const { rows } = await db.query<SyncedTableRow>(
    `SELECT ${COLUMNS} FROM synced_tables WHERE pipeline_id = $1 ORDER BY name`,
    [pipelineId],
  );
  return rows;
}

export async function countSyncedTablesOfSource(db: Queryable, source: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM synced_tables WHERE source_table_full_name = $1',
    [source],
  );
  return rows[0].n;
}

export async function findSyncedTableByTarget(
  db: Queryable,
  target: { instance_uid: string; database_name: string; target_schema: string; target_table: string },
): Promise<SyncedTableRow | undefined> {
  const { rows } = await db.query<SyncedTableRow>(
    `SELECT ${COLUMNS} FROM synced_tables
      WHERE instance_uid = $1 AND database_name = $2 AND target_schema = $3 AND target_table = $4`,
    [target.instance_uid, target.database_name, target.target_schema, target.target_table],
  );
  return rows[0];
}

/** The worker's report; merged into what is there (`null` removes a field). */
/**
 * Merges `status` into the table's status. With `holder`, only while that
 * node holds the lease of the table's pipeline: a node that lost it (hung,
 * then resumed) cannot write over what the new holder reports.
 */
export async function updateSyncedTableStatus(
  db: Queryable,
  id: string,
  status: { [K in keyof SyncedTableStatus]: SyncedTableStatus[K] | null },
  holder?: string,
): Promise<void> {
  await db.query(
    `UPDATE synced_tables t SET status = jsonb_strip_nulls(status || $2::jsonb)
      WHERE id = $1
        AND ($3::text IS NULL OR EXISTS (
              SELECT 1 FROM leases l
               WHERE l.resource = 'sync_pipeline' AND l.key = t.pipeline_id::text AND l.holder = $3))`,
    [id, JSON.stringify(status), holder ?? null],
  );
}

/**
 * The status of a table whose pipeline waits for a dead node: written only
 * if that node has not been heard from since `heardAt` (a node that came
 * back registers before it claims its pipelines, so its own fresh status is
 * never overwritten by a stale verdict).
 */
export async function setStrandedStatus(
  db: Queryable,
  id: string,
  status: { [K in keyof SyncedTableStatus]: SyncedTableStatus[K] | null },
  node: { id: string; heardAt: Date },
): Promise<void> {
  await db.query(
    `UPDATE synced_tables SET status = jsonb_strip_nulls(status || $2::jsonb)
      WHERE id = $1
        AND EXISTS (SELECT 1 FROM nodes WHERE node_id = $3 AND date_trunc('milliseconds', heartbeat_at) <= $4)`,
    [id, JSON.stringify(status), node.id, node.heardAt],
  );
}

export async function updateSyncedTableSpec(db: Queryable, id: string, spec: SyncedTableSpec): Promise<void> {
  await db.query('UPDATE synced_tables SET spec = $2 WHERE id = $1', [id, JSON.stringify(spec)]);
}

export async function deleteSyncedTableRow(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM synced_tables WHERE id = $1', [id]);
}
