import type { BaseBackupRow } from './store.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface PrunePlan {
  /** Base backups no point in the window needs. */
  removeBackups: string[];
  /** WAL segments before this one's are needed by no kept backup (timeline history files are always kept). */
  keepWalFrom?: string;
}

/**
 * What an instance's archive may lose while keeping every point of its
 * retention window (`now - days` … `now`) restorable: a point needs the
 * newest base backup that stopped before it, and the WAL from that backup's
 * start. So the newest backup that stopped at or before the window's start
 * is kept with everything after it; older backups, and the WAL before the
 * oldest kept backup, go. `pinned` backups (a child's restore is about to
 * read them) are kept whatever their age. Pure: the caller lists and removes.
 *
 * @example
 * planPrune([old, older, recent], now, 7) // → { removeBackups: [older.backup_id], keepWalFrom: old.start_wal_file }
 */
export function planPrune(
  backups: BaseBackupRow[],
  now: Date,
  days: number,
  pinned: ReadonlySet<string> = new Set(),
): PrunePlan {
  const sorted = [...backups].sort((a, b) => a.stopped_at.getTime() - b.stopped_at.getTime());
  if (sorted.length === 0) return { removeBackups: [] };
  const windowStart = now.getTime() - days * DAY_MS;
  let keep = 0;
  sorted.forEach((backup, index) => {
    if (backup.stopped_at.getTime() <= windowStart) keep = index;
  });
  // A backup a child is being restored from stays, with its WAL, until the child is made.
  const oldest = sorted.findIndex((backup, index) => index >= keep || pinned.has(backup.backup_id));
  return {
    removeBackups: sorted
      .slice(0, keep)
      .filter((backup) => !pinned.has(backup.backup_id))
      .map((backup) => backup.backup_id),
    keepWalFrom: sorted[oldest].start_wal_file,
  };
}

/** The archived WAL files that go: segments (and their `.partial`s) before `keepFrom`, on any timeline. */
export function walToRemove(files: string[], keepFrom: string): string[] {
  const position = (name: string) => name.slice(8, 24);
  return files.filter((name) => !name.endsWith('.history') && position(name) < position(keepFrom));
}

/** A deleted instance's archive outlives it by its retention window. */
export function archiveExpired(deletedAt: Date, days: number, now: Date): boolean {
  return deletedAt.getTime() + days * DAY_MS <= now.getTime();
}
