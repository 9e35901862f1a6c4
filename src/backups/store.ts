import type { Queryable } from '../store/store.js';

export interface BaseBackupRow {
  backup_id: string;
  instance_uid: string;
  /** `scheduled`, `on_demand` or `first` (taken as soon as the instance ran). */
  trigger: string;
  timeline: number;
  start_lsn: string;
  stop_lsn: string;
  start_wal_file: string;
  started_at: Date;
  stopped_at: Date;
  /** bigint as text: never a JS number. */
  size_bytes: string;
}

export interface BackupArchiveRow {
  instance_uid: string;
  instance_name: string;
  node_id: string;
  retention_window_in_days: number;
  deleted_at: Date | null;
}

const BACKUP_COLUMNS =
  'backup_id, instance_uid::text, trigger, timeline, start_lsn::text, stop_lsn::text, start_wal_file, started_at, stopped_at, size_bytes::text';

/** Records (or refreshes) the archive of a live instance. */
export async function upsertArchive(
  db: Queryable,
  archive: { uid: string; name: string; nodeId: string; retentionDays: number },
): Promise<void> {
  await db.query(
    `INSERT INTO backup_archives (instance_uid, instance_name, node_id, retention_window_in_days)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (instance_uid) DO UPDATE
       SET instance_name = $2, node_id = $3, retention_window_in_days = $4
     WHERE backup_archives.deleted_at IS NULL`,
    [archive.uid, archive.name, archive.nodeId, archive.retentionDays],
  );
}

/** The instance is being deleted: its archive is kept for its retention window from now. */
export async function markArchiveDeleted(
  db: Queryable,
  archive: { uid: string; name: string; nodeId: string; retentionDays: number },
): Promise<void> {
  await db.query(
    `INSERT INTO backup_archives (instance_uid, instance_name, node_id, retention_window_in_days, deleted_at)
     VALUES ($1, $2, $3, $4, now())
     ON CONFLICT (instance_uid) DO UPDATE SET deleted_at = now(), retention_window_in_days = $4
     WHERE backup_archives.deleted_at IS NULL`,
    [archive.uid, archive.name, archive.nodeId, archive.retentionDays],
  );
}

export async function listNodeArchives(db: Queryable, nodeId: string): Promise<BackupArchiveRow[]> {
  const { rows } = await db.query<BackupArchiveRow>(
    `SELECT instance_uid::text, instance_name, node_id, retention_window_in_days, deleted_at
       FROM backup_archives WHERE node_id = $1 ORDER BY instance_uid`,
    [nodeId],
  );
  return rows;
}

export async function deleteArchiveRow(db: Queryable, uid: string): Promise<void> {
  await db.query('DELETE FROM backup_archives WHERE instance_uid = $1', [uid]);
}

export async function insertBaseBackup(db: Queryable, row: BaseBackupRow): Promise<BaseBackupRow> {
  const { rows } = await db.query<BaseBackupRow>(
    `INSERT INTO base_backups (backup_id, instance_uid, trigger, timeline, start_lsn, stop_lsn, start_wal_file,
                               started_at, stopped_at, size_bytes)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${BACKUP_COLUMNS}`,
    [
      row.backup_id,
      row.instance_uid,
      row.trigger,
      row.timeline,
      row.start_lsn,
      row.stop_lsn,
      row.start_wal_file,
      row.started_at,
      row.stopped_at,
      row.size_bytes,
    ],
  );
  return rows[0];
}

/** An instance's base backups, oldest first. */
export async function listBaseBackups(db: Queryable, uid: string): Promise<BaseBackupRow[]> {
  const { rows } = await db.query<BaseBackupRow>(
    `SELECT ${BACKUP_COLUMNS} FROM base_backups WHERE instance_uid = $1 ORDER BY stopped_at, backup_id`,
    [uid],
  );
  return rows;
}

/**
 * The base backup a restore to `target` starts from: the newest one
 * consistent before it (its stop LSN at or before the LSN; its stop time
 * before the time).
 */
export async function findRestoreBackup(
  db: Queryable,
  uid: string,
  target: { lsn: string } | { time: string },
): Promise<BaseBackupRow | undefined> {
  const { rows } =
    'lsn' in target
      ? await db.query<BaseBackupRow>(
          // Qualified: the output column stop_lsn is text, which sorts 0/D00120 after 0/7100120.
          `SELECT ${BACKUP_COLUMNS} FROM base_backups WHERE base_backups.stop_lsn <= $2::pg_lsn AND instance_uid = $1
            ORDER BY base_backups.stop_lsn DESC LIMIT 1`,
          [uid, target.lsn],
        )
      : await db.query<BaseBackupRow>(
          `SELECT ${BACKUP_COLUMNS} FROM base_backups WHERE instance_uid = $1 AND stopped_at < $2::timestamptz
            ORDER BY stopped_at DESC LIMIT 1`,
          [uid, target.time],
        );
  return rows[0];
}

export async function deleteBaseBackupRow(db: Queryable, backupId: string): Promise<void> {
  await db.query('DELETE FROM base_backups WHERE backup_id = $1', [backupId]);
}

/** The base backups of `uid` that children not yet made will restore from. */
export async function listPendingRestoreBackups(db: Queryable, uid: string): Promise<string[]> {
  const { rows } = await db.query<{ backup_id: string }>(
    `SELECT DISTINCT spec->'parent'->>'backup_id' AS backup_id FROM instances
      WHERE spec->'parent'->>'uid' = $1 AND NOT coalesce((status->>'provisioned')::boolean, false)`,
    [uid],
  );
  return rows.map((row) => row.backup_id);
}
