import type { Queryable } from '../store/store.js';

/** The durable job that keeps its synced tables up to date. */
export interface PipelineRow {
  id: string;
  instance_uid: string;
  database_name: string;
  creator: string;
  created_at: Date;
  failures: number;
}

/** The pipelines API's UpdateInfo states Pier uses. */
export type UpdateState = 'QUEUED' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELED';

export interface PipelineUpdateRow {
  id: string;
  pipeline_id: string;
  state: UpdateState;
  full_refresh: boolean;
  cause: string;
  message: string | null;
  not_before: Date;
  created_at: Date;
  started_at: Date | null;
  ended_at: Date | null;
}

const PIPELINE = 'id::text, instance_uid::text, database_name, creator, created_at, failures';
const UPDATE = `id::text, pipeline_id::text, state, full_refresh, cause, message, not_before, created_at,
  started_at, ended_at`;

/** Resource name of the worker's leases (store/leases.ts): one per pipeline. */
export const PIPELINE_LEASE = 'sync_pipeline';

export async function insertPipeline(
  db: Queryable,
  row: Pick<PipelineRow, 'id' | 'instance_uid' | 'database_name' | 'creator'>,
): Promise<PipelineRow> {
  const { rows } = await db.query<PipelineRow>(
    `INSERT INTO sync_pipelines (id, instance_uid, database_name, creator) VALUES ($1, $2, $3, $4)
     RETURNING ${PIPELINE}`,
    [row.id, row.instance_uid, row.database_name, row.creator],
  );
  return rows[0];
}

export async function findPipeline(
  db: Queryable,
  id: string,
  lock = false,
): Promise<PipelineRow | undefined> {
  // A malformed id is no pipeline, not a store error.
  if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
  const { rows } = await db.query<PipelineRow>(
    `SELECT ${PIPELINE} FROM sync_pipelines WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
    [id],
  );
  return rows[0];
}

/** A pipeline, with where its instance runs (the node that made it) and who holds its lease. */
export interface PlacedPipeline extends PipelineRow {
  instance_name: string;
  node_id: string | null;
  holder: string | null;
}

/** Every pipeline with its instance's node and its lease holder: what the sync workers divide. */
export async function listPlacedPipelines(db: Queryable): Promise<PlacedPipeline[]> {
  const { rows } = await db.query<PlacedPipeline>(
    `SELECT p.id::text, p.instance_uid::text, p.database_name, p.creator, p.created_at, p.failures,
            i.name AS instance_name, i.node_id, l.holder
       FROM sync_pipelines p JOIN instances i ON i.uid = p.instance_uid
       LEFT JOIN leases l ON l.resource = $1 AND l.key = p.id::text
      ORDER BY p.id`,
    [PIPELINE_LEASE],
  );
  return rows;
}

export async function setPipelineFailures(db: Queryable, id: string, failures: number): Promise<void> {
  await db.query('UPDATE sync_pipelines SET failures = $2 WHERE id = $1', [id, failures]);
}

/** Removes a pipeline no synced table uses any more (its updates go with it). */
export async function deletePipelineIfUnused(db: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `DELETE FROM sync_pipelines p WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM synced_tables t WHERE t.pipeline_id = p.id)`,
    [id],
  );
  return (rowCount ?? 0) > 0;
}

export async function insertUpdate(
  db: Queryable,
  row: Pick<PipelineUpdateRow, 'id' | 'pipeline_id' | 'full_refresh' | 'cause'> & {
    state?: UpdateState;
    delayMs?: number;
    /** A continuous run: history only, never picked up as a due update. */
    continuous?: boolean;
  },
): Promise<PipelineUpdateRow> {
  const { rows } = await db.query<PipelineUpdateRow>(
    `INSERT INTO sync_pipeline_updates (id, pipeline_id, state, full_refresh, cause, not_before, started_at, continuous)
     VALUES ($1, $2, $3, $4, $5, clock_timestamp() + $6::double precision * interval '1 millisecond',
             CASE WHEN $3 = 'RUNNING' THEN clock_timestamp() END, $7)
     RETURNING ${UPDATE}`,
    [
      row.id,
      row.pipeline_id,
      row.state ?? 'QUEUED',
      row.full_refresh,
      row.cause,
      row.delayMs ?? 0,
      row.continuous ?? false,
    ],
  );
  return rows[0];
}

/** Newest first. */
export async function listUpdates(
  db: Queryable,
  pipelineId: string,
  limit: number,
  before?: Date,
): Promise<PipelineUpdateRow[]> {
  const { rows } = await db.query<PipelineUpdateRow>(
    `SELECT ${UPDATE} FROM sync_pipeline_updates WHERE pipeline_id = $1 AND ($2::timestamptz IS NULL OR created_at < $2)
      ORDER BY created_at DESC LIMIT $3`,
    [pipelineId, before ?? null, limit],
  );
  return rows;
}

/** The oldest QUEUED or RUNNING update that is due: what the worker runs next. */
export async function nextDueUpdate(
  db: Queryable,
  pipelineId: string,
): Promise<PipelineUpdateRow | undefined> {
  const { rows } = await db.query<PipelineUpdateRow>(
    `SELECT ${UPDATE} FROM sync_pipeline_updates
      WHERE pipeline_id = $1 AND state IN ('QUEUED', 'RUNNING') AND NOT continuous
        AND not_before <= clock_timestamp()
      ORDER BY created_at LIMIT 1`,
    [pipelineId],
  );
  return rows[0];
}

export async function markUpdate(
  db: Queryable,
  id: string,
  state: UpdateState,
  fields: { message?: string | null; delayMs?: number } = {},
): Promise<void> {
  await db.query(
    `UPDATE sync_pipeline_updates
        SET state = $2,
            message = coalesce($3, message),
            started_at = CASE WHEN $2 = 'RUNNING' THEN coalesce(started_at, clock_timestamp()) ELSE started_at END,
            ended_at = CASE WHEN $2 IN ('COMPLETED', 'FAILED', 'CANCELED') THEN clock_timestamp() END,
            not_before = clock_timestamp() + $4::double precision * interval '1 millisecond'
      WHERE id = $1`,
    [id, state, fields.message ?? null, fields.delayMs ?? 0],
  );
}

/** How the pipeline's latest continuous run ended (or RUNNING), if it had one. */
export async function lastContinuousRunState(
  db: Queryable,
  pipelineId: string,
): Promise<UpdateState | undefined> {
  const { rows } = await db.query<{ state: UpdateState }>(
    `SELECT state FROM sync_pipeline_updates WHERE pipeline_id = $1 AND continuous
      ORDER BY created_at DESC LIMIT 1`,
    [pipelineId],
  );
  return rows[0]?.state;
}

/**
 * Ends the continuous runs of a pipeline that are still RUNNING although no
 * runner follows them (their Pier process died); returns how many there were.
 */
export async function cancelOrphanedContinuousRuns(db: Queryable, pipelineId: string): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE sync_pipeline_updates
        SET state = 'CANCELED', ended_at = clock_timestamp(),
            message = concat_ws(' ', message, 'Ended when the Pier process that ran it stopped; a new run goes on from the last synced version.')
      WHERE pipeline_id = $1 AND continuous AND state = 'RUNNING'`,
    [pipelineId],
  );
  return rowCount ?? 0;
}
