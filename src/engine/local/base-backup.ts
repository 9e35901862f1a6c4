import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { PierError } from '../../errors.js';
import type { BaseBackupResult } from '../engine.js';
import { type CopyFilter, cloneDataDir } from './clone.js';
import { handToPostgres, type PostgresRuntime } from './runtime.js';

/**
 * What Postgres' documentation ("Making a Base Backup Using the Low Level
 * API") says a backup leaves out: the server recreates these at start, and
 * copying them would be wrong (an old `postmaster.pid`, replication slots of
 * the source) or wasted (WAL comes from the archive or the stream).
 */
const EMPTIED_DIRS = new Set([
  'pg_wal',
  'pg_replslot',
  'pg_dynshmem',
  'pg_notify',
  'pg_serial',
  'pg_snapshots',
  'pg_stat_tmp',
  'pg_subtrans',
]);
const SKIPPED_FILES = new Set([
  'postmaster.pid',
  'postmaster.opts',
  'backup_label',
  'backup_label.old',
  'tablespace_map',
  'backup_manifest',
  'recovery.signal',
  'standby.signal',
  'postgresql.auto.conf.tmp',
  'current_logfiles.tmp',
]);

/** The backup filter: top-level emptied directories, skipped files, temp files anywhere. */
export const baseBackupFilter: CopyFilter = (path, isDirectory) => {
  const name = path.slice(path.lastIndexOf('/') + 1);
  if (name.startsWith('pgsql_tmp') || name.startsWith('pg_internal.init')) return 'skip';
  if (!path.includes('/')) {
    if (isDirectory && EMPTIED_DIRS.has(name)) return 'keep-dir';
    if (!isDirectory && SKIPPED_FILES.has(name)) return 'skip';
  }
  return 'copy';
};

export interface BaseBackupOptions {
  /** Shown in `backup_label` and the server log. */
  label: string;
  /**
   * `pg_backup_stop(wait_for_archive)`: wait until the WAL the backup needs
   * is in the archive, so the backup is restorable from the archive alone.
   * A standby made from a primary (which streams its WAL) need not wait.
   */
  waitForArchive: boolean;
}

/**
 * Takes a base backup of a running cluster into `targetDir` (which must not
 * exist) with Postgres' low-level backup API: `pg_backup_start` on one
 * superuser session kept open for the whole copy, the data directory copied
 * (reflinks where the file system has them), then `pg_backup_stop`, whose
 * `backup_label` and `tablespace_map` are written into the copy. The copy is
 * inconsistent on its own; with WAL from `startLsn` to `stopLsn` it is a
 * consistent cluster. A failure removes the partial copy.
 *
 * @example
 * const backup = await takeBaseBackup(runtime, engine.superuserConnection(uid, 'postgres'),
 *   dataDir, '/backups/b1', { label: 'pier b1', waitForArchive: true });
 * // backup.stopLsn === '0/3000100'
 */
export async function takeBaseBackup(
  runtime: PostgresRuntime,
  connection: pg.ClientConfig,
  dataDir: string,
  targetDir: string,
  options: BaseBackupOptions,
): Promise<BaseBackupResult> {
  const client = new pg.Client({ ...connection, application_name: 'pier base backup' });
  await client.connect();
  // A session that dies (server stopped meanwhile) must fail the backup, not crash Pier.
  client.on('error', () => {});
  let started = false;
  try {
    const start = await client.query<{ lsn: string; at: Date }>(
      'SELECT pg_backup_start($1, true)::text AS lsn, clock_timestamp() AS at',
      [options.label],
    );
    started = true;
    const bytes = await cloneDataDir(dataDir, targetDir, { filter: baseBackupFilter, live: true });
    const stop = await client.query<{ lsn: string; labelfile: string; spcmapfile: string | null }>(
      'SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_backup_stop($1)',
      [options.waitForArchive],
    );
    started = false;
    const { rows: clock } = await client.query<{ at: Date }>('SELECT clock_timestamp() AS at');
    const { labelfile, spcmapfile } = stop.rows[0];
    await writeFile(join(targetDir, 'backup_label'), labelfile);
    await handToPostgres(runtime, join(targetDir, 'backup_label'), 0o600);
    if (spcmapfile) {
      await writeFile(join(targetDir, 'tablespace_map'), spcmapfile);
      await handToPostgres(runtime, join(targetDir, 'tablespace_map'), 0o600);
    }
    await mkdir(join(targetDir, 'pg_wal', 'archive_status'), { recursive: true });
    await handToPostgres(runtime, join(targetDir, 'pg_wal', 'archive_status'), 0o700);
    const label = parseBackupLabel(labelfile);
    return {
      label: options.label,
      startLsn: start.rows[0].lsn,
      stopLsn: stop.rows[0].lsn,
      startWalFile: label.startWalFile,
      timeline: label.timeline,
      startedAt: start.rows[0].at,
      stoppedAt: clock[0].at,
      bytes,
    };
  } catch (cause) {
    if (started) await client.query('SELECT pg_backup_stop(false)').catch(() => {});
    await rm(targetDir, { recursive: true, force: true });
    throw new PierError(
      'INTERNAL_ERROR',
      `The base backup of ${dataDir} failed: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/** The fields of a `backup_label` Pier uses. */
function parseBackupLabel(text: string): { startWalFile: string; timeline: number } {
  const wal = /^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)$/m.exec(text);
  const timeline = /^START TIMELINE: (\d+)$/m.exec(text);
  if (!wal || !timeline) throw new PierError('INTERNAL_ERROR', `Unexpected backup_label:\n${text}`);
  return { startWalFile: wal[1], timeline: Number.parseInt(timeline[1], 10) };
}

export interface StandbyOptions {
  /**
   * A physical replication slot to create on the primary first (reserving WAL
   * at once), so the standby can stream every segment from the backup's start
   * even if the primary recycles WAL while the copy runs. Reused if it exists.
   */
  slotName?: string;
  /** `primary_conninfo` for the standby, written to the copy's `postgresql.auto.conf`. */
  primaryConninfo?: string;
}

/**
 * Makes a standby's data directory from a running primary: an optional
 * replication slot, a base backup that does not wait for the archive, and
 * `standby.signal`. Start a server on `targetDir` (with `primary_conninfo`
 * and `primary_slot_name` in its settings, or given here) and it streams
 * from the primary.
 *
 * @example
 * await makeStandbyDataDir(runtime, engine.superuserConnection(uid, 'postgres'), primaryDataDir,
 *   standbyDir, { slotName: 'pier_secondary_1' });
 */
export async function makeStandbyDataDir(
  runtime: PostgresRuntime,
  primary: pg.ClientConfig,
  primaryDataDir: string,
  targetDir: string,
  options: StandbyOptions = {},
): Promise<BaseBackupResult> {
  if (options.slotName && !/^[a-z0-9_]{1,63}$/.test(options.slotName))
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `Replication slot name '${options.slotName}' must be 1-63 of a-z, 0-9, _.`,
    );
  if (options.slotName) {
    const client = new pg.Client(primary);
    await client.connect();
    try {
      await client.query(
        `SELECT pg_create_physical_replication_slot($1, true)
          WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`,
        [options.slotName],
      );
    } finally {
      await client.end();
    }
  }
  const backup = await takeBaseBackup(runtime, primary, primaryDataDir, targetDir, {
    label: `pier standby ${options.slotName ?? ''}`.trim(),
    waitForArchive: false,
  });
  await writeFile(join(targetDir, 'standby.signal'), '');
  await handToPostgres(runtime, join(targetDir, 'standby.signal'), 0o600);
  if (options.primaryConninfo || options.slotName) {
    const lines = [
      options.primaryConninfo ? `primary_conninfo = '${options.primaryConninfo.replaceAll("'", "''")}'` : '',
      options.slotName ? `primary_slot_name = '${options.slotName}'` : '',
    ].filter(Boolean);
    const auto = join(targetDir, 'postgresql.auto.conf');
    const current = await readFile(auto, 'utf8').catch(() => '');
    await writeFile(auto, `${current}${lines.join('\n')}\n`);
    await handToPostgres(runtime, auto, 0o600);
  }
  return backup;
}
