import { randomBytes } from 'node:crypto';
import type { ControlContext } from '../control/context.js';
import { asObject, describe } from '../control/validate.js';
import type { Engine } from '../engine/engine.js';
import { invalidParameter, PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { instanceForCaller } from '../instances/permissions.js';
import { reportedState } from '../instances/state.js';
import type { InstanceRow, ParentRef } from '../instances/store.js';
import type { Store } from '../store/store.js';
import { lsnParameter, parseLsn, segmentEndLsn } from './lsn.js';
import {
  type BaseBackupRow,
  findRestoreBackup,
  insertBaseBackup,
  listBaseBackups,
  upsertArchive,
} from './store.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** `20261201T112233Z-1a2b`: sorts by time, unique per instance. */
function newBackupId(now = new Date()): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${randomBytes(2).toString('hex')}`;
}

/**
 * Takes a base backup of a running instance and records it in the catalog.
 * Used by the schedule and by the on-demand API alike.
 */
export async function takeAndRecordBackup(
  store: Store,
  engine: Engine,
  instance: Pick<InstanceRow, 'uid' | 'name' | 'spec'>,
  nodeId: string,
  trigger: 'first' | 'scheduled' | 'on_demand',
): Promise<BaseBackupRow> {
  await upsertArchive(store, {
    uid: instance.uid,
    name: instance.name,
    nodeId,
    retentionDays: instance.spec.retention_window_in_days,
  });
  const id = newBackupId();
  const backup = await engine.takeBaseBackup(instance.uid, id);
  return insertBaseBackup(store, {
    backup_id: id,
    instance_uid: instance.uid,
    trigger,
    timeline: backup.timeline,
    start_lsn: backup.startLsn,
    stop_lsn: backup.stopLsn,
    start_wal_file: backup.startWalFile,
    started_at: backup.startedAt,
    stopped_at: backup.stoppedAt,
    size_bytes: String(backup.bytes),
  });
}

/** An instance's base backups (CAN_USE), oldest first. */
export async function listInstanceBackups(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
): Promise<{ instance: InstanceRow; backups: BaseBackupRow[] }> {
  const instance = await instanceForCaller(ctx.store, caller, name, 'CAN_USE');
  return { instance, backups: await listBaseBackups(ctx.store, instance.uid) };
}

/** Pier's on-demand base backup (CAN_MANAGE): returns once it is complete and archived. */
export async function requestBackup(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
): Promise<{ instance: InstanceRow; backup: BaseBackupRow }> {
  const instance = await instanceForCaller(ctx.store, caller, name, 'CAN_MANAGE');
  assertRunsHere(ctx, instance, 'take a base backup of it');
  return {
    instance,
    backup: await takeAndRecordBackup(ctx.store, ctx.engine, instance, ctx.config.nodeId, 'on_demand'),
  };
}

function assertRunsHere(ctx: ControlContext, instance: InstanceRow, toDo: string): void {
  if (instance.node_id !== ctx.config.nodeId) {
    throw new PierError(
      'INVALID_STATE',
      `Database instance '${instance.name}' runs on another Pier node; call that node's API to ${toDo}.`,
    );
  }
  const state = reportedState(instance);
  if (state !== 'AVAILABLE') {
    throw new PierError(
      'INVALID_STATE',
      `Database instance '${instance.name}' is ${state}; it must be AVAILABLE to ${toDo}. Start it and try again.`,
    );
  }
}

/**
 * Reads `parent_instance_ref` of a create request and resolves it to a
 * restore: the parent (CAN_USE), the target (`lsn` wins over `branch_time`,
 * as in the SDK; neither means the parent's current LSN, or the end of its
 * archive if it is STOPPED or FAILED) and the base backup to start from. A target in the future or before the restore window
 * is refused with a 400 that says what the window is.
 */
export async function resolveParentRef(
  ctx: ControlContext,
  caller: IdentityRow,
  input: unknown,
): Promise<ParentRef> {
  const ref = asObject(input, 'parent_instance_ref');
  if (typeof ref.name !== 'string' || ref.name === '') {
    throw invalidParameter('parent_instance_ref.name is required: the instance to create the child from.');
  }
  const parent = await instanceForCaller(ctx.store, caller, ref.name, 'CAN_USE');
  return restorePointOf(ctx, parent, { lsn: ref.lsn, branch_time: ref.branch_time }, 'parent_instance_ref');
}

/**
 * The restore of `parent` at an LSN or a time (`lsn` wins; neither: its
 * current LSN), checked against its WAL and restore window; `field` names
 * the request fields in messages (`parent_instance_ref`, or Autoscaling's
 * `spec` with `source_branch_lsn` / `source_branch_time`).
 */
export async function restorePointOf(
  ctx: ControlContext,
  parent: InstanceRow,
  ref: { lsn?: unknown; branch_time?: unknown },
  field: string,
  names: { lsn: string; time: string } = { lsn: 'lsn', time: 'branch_time' },
): Promise<ParentRef> {
  if (parent.spec.deleted)
    throw new PierError('INVALID_STATE', `Database instance '${parent.name}' is being deleted.`);
  // A parent that is down (stopped, or FAILED with its data directory lost) still has its archive.
  const state = reportedState(parent);
  const running = state === 'AVAILABLE';
  if (parent.node_id !== ctx.config.nodeId || !['AVAILABLE', 'STOPPED', 'FAILED'].includes(state))
    assertRunsHere(ctx, parent, 'create a child instance from it');
  const requested: Pick<ParentRef, 'lsn' | 'branch_time'> = {};
  let target: ParentRef['target'];
  const current = running ? await ctx.engine.currentWalLsn(parent.uid) : await archivedEnd(ctx, parent);
  if (ref.lsn !== undefined && ref.lsn !== null) {
    requested.lsn = lsnParameter(ref.lsn, `${field}.${names.lsn}`);
    if (parseLsn(requested.lsn) > parseLsn(current)) {
      throw invalidParameter(
        running
          ? `${field}.${names.lsn} ${requested.lsn} is in the future: '${parent.name}' has written WAL up to ${current}. Use an LSN at or before it.`
          : `${field}.${names.lsn} ${requested.lsn} is past the archived WAL of '${parent.name}' (${state}), which reaches ${current}. Use an earlier LSN.`,
      );
    }
    target = { lsn: requested.lsn };
  } else if (ref.branch_time !== undefined && ref.branch_time !== null) {
    if (!running) {
      throw new PierError(
        'INVALID_STATE',
        `Database instance '${parent.name}' is ${state}: a child at a time needs it AVAILABLE. Give an lsn, or no target for the end of its archived WAL.`,
      );
    }
    const time = parseTime(ref.branch_time, `${field}.${names.time}`);
    requested.branch_time = ref.branch_time as string;
    if (time.getTime() > Date.now()) {
      throw invalidParameter(
        `${field}.${names.time} ${requested.branch_time} is in the future. Use a time at or before now.`,
      );
    }
    const windowStart = Date.now() - parent.spec.retention_window_in_days * DAY_MS;
    if (time.getTime() < windowStart) {
      throw invalidParameter(
        `${field}.${names.time} ${requested.branch_time} is outside the retention window of '${parent.name}' (${parent.spec.retention_window_in_days} days, from ${new Date(windowStart).toISOString()}).`,
      );
    }
    // Postgres' own spelling, to the microsecond: a Date would drop microseconds, and with them commits at the target.
    target = { time: await recoveryTime(ctx.store, requested.branch_time) };
  } else {
    // A running parent: its current LSN. One that is down: all of its archive.
    target = running ? { lsn: current } : { end_of_archive: current };
  }
  const backup = await findRestoreBackup(
    ctx.store,
    parent.uid,
    'end_of_archive' in target ? { lsn: target.end_of_archive } : target,
  );
  if (!backup) {
    const [earliest] = await listBaseBackups(ctx.store, parent.uid);
    const from = earliest
      ? `the earliest restorable point is LSN ${earliest.stop_lsn} (${earliest.stopped_at.toISOString()})`
      : 'it has no base backup yet (the first one is taken as soon as it is AVAILABLE; try again in a few seconds)';
    throw invalidParameter(`The requested point is outside the restore window of '${parent.name}': ${from}.`);
  }
  return { uid: parent.uid, name: parent.name, ...requested, target, backup_id: backup.backup_id };
}

/** The end of the newest archived WAL segment of an instance that is not running. */
async function archivedEnd(ctx: ControlContext, parent: InstanceRow): Promise<string> {
  const segments = (await ctx.engine.backups.listWal(parent.uid)).filter((name) =>
    /^[0-9A-F]{24}$/.test(name),
  );
  const newest = segments.sort((a, b) => a.slice(8).localeCompare(b.slice(8))).at(-1);
  if (!newest) {
    throw invalidParameter(`Database instance '${parent.name}' has no archived WAL to create a child from.`);
  }
  return segmentEndLsn(newest);
}

/** `2026-01-02 03:04:05.123456+00`: the form `recovery_target_time` reads. */
async function recoveryTime(store: Store, time: string): Promise<string> {
  const { rows } = await store.query<{ time: string }>(
    `SELECT to_char($1::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS time`,
    [time],
  );
  return rows[0].time;
}

function parseTime(value: unknown, field: string): Date {
  const time = typeof value === 'string' ? new Date(value) : new Date(Number.NaN);
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(time.getTime())) {
    throw invalidParameter(
      `${field} must be an RFC 3339 timestamp such as "2026-01-02T03:04:05Z", got ${describe(value)}.`,
    );
  }
  return time;
}
