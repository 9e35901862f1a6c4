import type { Queryable } from '../store/store.js';

/** One sample of an instance's pg_stat_database, summed over its databases. Counters as text (bigint). */
export interface MetricSampleRow {
  sampled_at: Date;
  connections: number;
  transactions: string;
  database_bytes: string;
  blocks_hit: string;
  blocks_read: string;
}

/** One finished pass of a synced table. */
export interface SyncPassRow {
  ended_at: Date;
  rows_synced: string;
  delta_version: string;
  lag_ms: string | null;
  duration_ms: number;
}

/** How long samples and passes are kept: a day. */
const METRICS_RETENTION_HOURS = 24;

export async function listSampledInstances(
  db: Queryable,
  nodeId: string,
): Promise<{ uid: string; name: string }[]> {
  const { rows } = await db.query<{ uid: string; name: string }>(
    `SELECT uid::text, name FROM instances WHERE node_id = $1 AND state = 'AVAILABLE' ORDER BY name`,
    [nodeId],
  );
  return rows;
}

export async function insertMetricSample(
  db: Queryable,
  uid: string,
  sample: Omit<MetricSampleRow, 'sampled_at'>,
): Promise<void> {
  await db.query(
    `INSERT INTO instance_metric_samples
       (instance_uid, sampled_at, connections, transactions, database_bytes, blocks_hit, blocks_read)
     VALUES ($1, clock_timestamp(), $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
    [
      uid,
      sample.connections,
      sample.transactions,
      sample.database_bytes,
      sample.blocks_hit,
      sample.blocks_read,
    ],
  );
}

export async function listMetricSamples(
  db: Queryable,
  uid: string,
  sinceMinutes: number,
): Promise<MetricSampleRow[]> {
  const { rows } = await db.query<MetricSampleRow>(
    `SELECT sampled_at, connections, transactions::text, database_bytes::text, blocks_hit::text, blocks_read::text
       FROM instance_metric_samples
      WHERE instance_uid = $1 AND sampled_at > now() - make_interval(mins => $2)
      ORDER BY sampled_at`,
    [uid, sinceMinutes],
  );
  return rows;
}

/** The two newest samples of every instance (a rate needs two), with the instance's name. */
export async function latestMetricSamples(
  db: Queryable,
): Promise<(MetricSampleRow & { name: string; rank: number })[]> {
  const { rows } = await db.query<MetricSampleRow & { name: string; rank: number }>(
    `SELECT * FROM (
       SELECT i.name, s.sampled_at, s.connections, s.transactions::text, s.database_bytes::text,
              s.blocks_hit::text, s.blocks_read::text,
              row_number() OVER (PARTITION BY s.instance_uid ORDER BY s.sampled_at DESC)::int AS rank
         FROM instance_metric_samples s JOIN instances i ON i.uid = s.instance_uid
        WHERE s.sampled_at > now() - interval '5 minutes') latest
      WHERE rank <= 2 ORDER BY name, rank`,
  );
  return rows;
}

export async function insertSyncPass(
  db: Queryable,
  tableId: string,
  pass: { endedAt: Date; rows: number; deltaVersion: number; lagMs?: number; durationMs: number },
): Promise<void> {
  await db.query(
    `INSERT INTO synced_table_passes (synced_table_id, ended_at, rows_synced, delta_version, lag_ms, duration_ms)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [tableId, pass.endedAt, pass.rows, pass.deltaVersion, pass.lagMs ?? null, pass.durationMs],
  );
}

export async function listSyncPasses(
  db: Queryable,
  tableId: string,
  sinceMinutes: number,
): Promise<SyncPassRow[]> {
  const { rows } = await db.query<SyncPassRow>(
    `SELECT ended_at, rows_synced::text, delta_version::text, lag_ms::text, duration_ms
       FROM synced_table_passes
      WHERE synced_table_id = $1 AND ended_at > now() - make_interval(mins => $2)
      ORDER BY ended_at`,
    [tableId, sinceMinutes],
  );
  return rows;
}

/** Drops samples and passes older than the retention; returns how many rows went. */
export async function pruneMetrics(db: Queryable): Promise<number> {
  const cutoff = `now() - interval '${METRICS_RETENTION_HOURS} hours'`;
  const samples = await db.query(`DELETE FROM instance_metric_samples WHERE sampled_at < ${cutoff}`);
  const passes = await db.query(`DELETE FROM synced_table_passes WHERE ended_at < ${cutoff}`);
  return (samples.rowCount ?? 0) + (passes.rowCount ?? 0);
}
