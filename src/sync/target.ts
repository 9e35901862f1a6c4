import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { TargetColumn, TargetLayout } from './columns.js';

/**
 * The Postgres side of a synced table: its name, its progress row and the
 * SQL shared by snapshots and incremental batches. Every function takes a
 * client connected to the target database with the rights to write it.
 */
export interface SyncTarget {
  schema: string;
  table: string;
}

/**
 * Where each synced table's last applied Delta version lives: in the target
 * database itself, written in the same transaction as the rows, so the rows
 * and the version that produced them can never disagree.
 */
const PROGRESS_TABLE = 'pier_sync.progress';

/**
 * Sync transactions commit without waiting for their WAL to reach disk: the
 * rows and the version they reflect commit together, so a commit a crash
 * loses is lost whole, the recorded version with it, and the next sync
 * simply does that work again. Nothing is applied twice or half.
 */
export const ASYNC_COMMIT = 'SET LOCAL synchronous_commit = off';

export function qualified(target: SyncTarget): string {
  return `${pg.escapeIdentifier(target.schema)}.${pg.escapeIdentifier(target.table)}`;
}

export function columnList(columns: TargetColumn[]): string {
  return columns.map((column) => pg.escapeIdentifier(column.name)).join(', ');
}

export function columnDefinitions(columns: TargetColumn[]): string {
  return columns.map((column) => `${pg.escapeIdentifier(column.name)} ${column.pgType}`).join(', ');
}

export function keyList(layout: TargetLayout): string {
  return columnList(layout.primaryKey);
}

export async function ensureProgressTable(client: pg.ClientBase): Promise<void> {
  await client.query('CREATE SCHEMA IF NOT EXISTS pier_sync');
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${PROGRESS_TABLE} (
       target_schema text NOT NULL,
       target_table text NOT NULL,
       delta_version bigint NOT NULL,
       delta_commit_timestamp timestamptz,
       updated_at timestamptz NOT NULL DEFAULT now(),
       PRIMARY KEY (target_schema, target_table)
     )`,
  );
}

export interface SyncProgress {
  deltaVersion: number;
  deltaCommitTimestamp?: Date;
}

/** The last Delta version applied to `target`, or undefined before its first snapshot. */
export async function readProgress(
  client: pg.ClientBase,
  target: SyncTarget,
  options: { lock?: boolean } = {},
): Promise<SyncProgress | undefined> {
  const { rows } = await client.query<{ delta_version: string; delta_commit_timestamp: Date | null }>(
    `SELECT delta_version::text, delta_commit_timestamp FROM ${PROGRESS_TABLE}
      WHERE target_schema = $1 AND target_table = $2${options.lock ? ' FOR UPDATE' : ''}`,
    [target.schema, target.table],
  );
  if (!rows[0]) return undefined;
  return {
    deltaVersion: Number(rows[0].delta_version),
    ...(rows[0].delta_commit_timestamp ? { deltaCommitTimestamp: rows[0].delta_commit_timestamp } : {}),
  };
}

export async function writeProgress(
  client: pg.ClientBase,
  target: SyncTarget,
  progress: SyncProgress,
): Promise<void> {
  await client.query(
    `INSERT INTO ${PROGRESS_TABLE} (target_schema, target_table, delta_version, delta_commit_timestamp)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (target_schema, target_table)
     DO UPDATE SET delta_version = EXCLUDED.delta_version,
                   delta_commit_timestamp = EXCLUDED.delta_commit_timestamp,
                   updated_at = now()`,
    [target.schema, target.table, String(progress.deltaVersion), progress.deltaCommitTimestamp ?? null],
  );
}

/**
 * COPY bytes queued for the server before the producer waits, and how far
 * the queue must fall before it carries on: Postgres always has the next
 * megabytes while the producer decodes, and memory stays bounded.
 */
const QUEUE_HIGH_BYTES = 8 << 20;
const QUEUE_LOW_BYTES = 4 << 20;

/**
 * Streams COPY data into `sql` (a `COPY … FROM STDIN`), honouring
 * backpressure, so memory holds a few megabytes at a time however large the
 * table. Returns the rows Postgres took.
 */
export async function copyInto(
  client: pg.ClientBase,
  sql: string,
  batches: AsyncIterable<string | Buffer>,
): Promise<number> {
  const stream = client.query(copyFrom(sql));
  const finished = new Promise<void>((resolve, reject) => {
    stream.on('finish', resolve);
    stream.on('error', reject);
  });
  // An error while we still write (Postgres refused a row) must not go unhandled.
  finished.catch(() => {});
  // Not the stream's 'drain' (only once its queue is empty, leaving Postgres idle while we decode).
  let queued = 0;
  let resume: (() => void) | undefined;
  const sent = (bytes: number) => () => {
    queued -= bytes;
    if (resume && queued <= QUEUE_LOW_BYTES) {
      resume();
      resume = undefined;
    }
  };
  try {
    for await (const chunk of batches) {
      if (chunk.length === 0) continue;
      const bytes = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
      queued += bytes;
      stream.write(chunk, sent(bytes));
      if (queued > QUEUE_HIGH_BYTES) {
        await Promise.race([
          new Promise<void>((resolve) => {
            resume = resolve;
          }),
          finished,
        ]);
      }
    }
  } catch (error) {
    stream.destroy(error as Error);
    await finished.catch(() => {});
    throw error;
  }
  stream.end();
  await finished;
  return stream.rowCount;
}
