import type { ChildRef, InstanceRow, ParentRef } from '../instances/store.js';
import type { BaseBackupRow } from './store.js';

/** A DatabaseInstanceRef (SDK shape) naming the parent a child was restored from. */
export function parentRefView(parent: ParentRef, effectiveLsn: string | undefined) {
  return {
    name: parent.name,
    uid: parent.uid,
    ...(parent.lsn ? { lsn: parent.lsn } : {}),
    ...(parent.branch_time ? { branch_time: parent.branch_time } : {}),
    ...(effectiveLsn ? { effective_lsn: effectiveLsn } : {}),
  };
}

/** A DatabaseInstanceRef naming one child, for the parent's `child_instance_refs`. */
export function childRefView(child: ChildRef) {
  return {
    name: child.name,
    uid: child.uid,
    ...(child.parent.lsn ? { lsn: child.parent.lsn } : {}),
    ...(child.parent.branch_time ? { branch_time: child.parent.branch_time } : {}),
    ...(child.effective_lsn ? { effective_lsn: child.effective_lsn } : {}),
  };
}

/** Pier's own shape for a base backup (Databricks has no backups API). */
export function baseBackupView(instance: Pick<InstanceRow, 'name'>, backup: BaseBackupRow) {
  return {
    backup_id: backup.backup_id,
    instance_name: instance.name,
    trigger: backup.trigger.toUpperCase(),
    timeline: backup.timeline,
    start_lsn: backup.start_lsn,
    end_lsn: backup.stop_lsn,
    start_time: backup.started_at.toISOString(),
    end_time: backup.stopped_at.toISOString(),
    size_bytes: backup.size_bytes,
  };
}

/** The list, with the earliest point a child can be made from (the oldest backup's end). */
export function baseBackupsView(instance: Pick<InstanceRow, 'name'>, backups: BaseBackupRow[]) {
  const [earliest] = backups;
  return {
    base_backups: backups.map((backup) => baseBackupView(instance, backup)),
    ...(earliest
      ? { earliest_restore_point: { lsn: earliest.stop_lsn, time: earliest.stopped_at.toISOString() } }
      : {}),
  };
}
