import type { Engine } from '../engine/engine.js';
import { noteFailure } from '../failures.js';
import { reportedState } from '../instances/state.js';
import { findInstanceByUid, type InstanceRow, listNodeInstances } from '../instances/store.js';
import type { Reconciler } from '../reconcile/reconciler.js';
import type { Store } from '../store/store.js';
import { archiveExpired, planPrune, walToRemove } from './retention.js';
import { takeAndRecordBackup } from './service.js';
import {
  deleteArchiveRow,
  deleteBaseBackupRow,
  listBaseBackups,
  listNodeArchives,
  listPendingRestoreBackups,
  upsertArchive,
} from './store.js';

export interface BackupScheduleOptions {
  nodeId: string;
  /** Time between scheduled base backups of each instance (a day by default). */
  intervalMs?: number;
  /** How often the schedule and the retention window are looked at. */
  tickMs?: number;
  /** The clock retention is judged by (tests move it forward). */
  now?: () => Date;
  log?: (message: string) => void;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Base backups on a schedule, and the retention window kept: every
 * AVAILABLE instance of this node gets a first base backup as soon as it runs
 * (so a child can be made from any later point), another each interval, and
 * its archive is pruned to what its `retention_window_in_days` needs. A
 * deleted instance's archive goes once its window has passed.
 */
export class BackupScheduler {
  private readonly inFlight = new Set<string>();
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopped = false;
  private readonly onChanged = (uid: string) => void this.onInstanceChanged(uid);

  constructor(
    private readonly store: Store,
    private readonly engine: Engine,
    private readonly reconciler: Reconciler,
    private readonly options: BackupScheduleOptions,
  ) {}

  start(): void {
    this.reconciler.on('changed', this.onChanged);
    this.timer = setInterval(() => {
      this.ticking ??= this.tick().finally(() => {
        this.ticking = undefined;
      });
    }, this.options.tickMs ?? 60_000);
    this.timer.unref();
    this.ticking = this.tick().finally(() => {
      this.ticking = undefined;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.reconciler.off('changed', this.onChanged);
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
    while (this.inFlight.size > 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  /** One look at every instance and archive of this node. */
  async tick(): Promise<void> {
    try {
      for (const row of await listNodeInstances(this.store, this.options.nodeId)) {
        if (this.stopped) return;
        await this.backupIfDue(row);
      }
      await this.prune();
    } catch (error) {
      noteFailure('backups.tick', error);
    }
  }

  /** The reconciler reported a state: an instance that just became AVAILABLE may be due a backup. */
  private async onInstanceChanged(uid: string): Promise<void> {
    if (this.stopped || this.inFlight.has(uid)) return;
    try {
      const row = await findInstanceByUid(this.store, uid);
      if (row && row.node_id === this.options.nodeId && (await this.backupIfDue(row))) await this.prune();
    } catch (error) {
      noteFailure('backups.first', error);
    }
  }

  /** A first backup for an instance that has none, a scheduled one once the interval passed; true if one was taken. */
  private async backupIfDue(row: InstanceRow): Promise<boolean> {
    if (reportedState(row) !== 'AVAILABLE' || !(await this.engine.observe(row.uid)).ready) return false;
    const latest = (await listBaseBackups(this.store, row.uid)).at(-1);
    const interval = this.options.intervalMs ?? DAY_MS;
    if (latest && this.now().getTime() - latest.stopped_at.getTime() < interval) {
      await upsertArchive(this.store, archiveOf(row, this.options.nodeId));
      return false;
    }
    return this.backup(row, latest ? 'scheduled' : 'first');
  }

  private async backup(row: InstanceRow, trigger: 'first' | 'scheduled'): Promise<boolean> {
    if (this.inFlight.has(row.uid)) return false;
    this.inFlight.add(row.uid);
    try {
      const backup = await takeAndRecordBackup(this.store, this.engine, row, this.options.nodeId, trigger);
      this.options.log?.(
        `${row.name}: base backup ${backup.backup_id} (${trigger}) up to LSN ${backup.stop_lsn}`,
      );
      return true;
    } catch (error) {
      // The instance stopped or is being changed meanwhile: the next tick tries again.
      noteFailure('backups.base-backup', error);
      return false;
    } finally {
      this.inFlight.delete(row.uid);
    }
  }

  /** Keeps each archive of this node to its retention window. */
  private async prune(): Promise<void> {
    const storage = this.engine.backups;
    const now = this.now();
    for (const archive of await listNodeArchives(this.store, this.options.nodeId)) {
      if (this.stopped || this.inFlight.has(archive.instance_uid)) continue;
      const uid = archive.instance_uid;
      if (archive.deleted_at && archiveExpired(archive.deleted_at, archive.retention_window_in_days, now)) {
        await storage.removeArchive(uid);
        await deleteArchiveRow(this.store, uid);
        this.options.log?.(
          `${archive.instance_name}: the archive of the deleted instance passed its retention window and was removed`,
        );
        continue;
      }
      const backups = await listBaseBackups(this.store, uid);
      const pinned = new Set(await listPendingRestoreBackups(this.store, uid));
      const plan = planPrune(backups, now, archive.retention_window_in_days, pinned);
      for (const id of plan.removeBackups) {
        // The catalog first: a restore never picks a backup that is going.
        await deleteBaseBackupRow(this.store, id);
        await storage.removeBaseBackup(uid, id);
      }
      if (plan.keepWalFrom)
        await storage.removeWal(uid, walToRemove(await storage.listWal(uid), plan.keepWalFrom));
    }
  }
}

function archiveOf(row: InstanceRow, nodeId: string) {
  return { uid: row.uid, name: row.name, nodeId, retentionDays: row.spec.retention_window_in_days };
}
