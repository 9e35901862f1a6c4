import { randomBytes } from 'node:crypto';
import { appendFile, chmod, chown, copyFile, lstat, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { cloneDataDir } from './clone.js';

/**
 * Directories whose contents a copy of a running cluster leaves out, as the
 * Postgres documentation on base backups says (the server rebuilds them);
 * `pg_wal` is copied separately, after the backup has stopped.
 */
const SKIP_CONTENTS = new Set([
  'pg_wal',
  'pg_replslot',
  'pg_dynshmem',
  'pg_notify',
  'pg_serial',
  'pg_snapshots',
  'pg_stat_tmp',
  'pg_subtrans',
]);
const SKIP_FILES = new Set(['postmaster.pid', 'postmaster.opts', 'backup_label', 'tablespace_map']);

/**
 * Copies a running cluster into `target` as a branch: a base backup taken
 * with Postgres' low-level backup API (`pg_backup_start` … copy …
 * `pg_backup_stop`), its WAL kept by a temporary replication slot while the
 * files are copied, then set to recover to the backup's end and promote, so
 * the branch starts on a timeline of its own at exactly that LSN. Returns
 * the LSN (text: LSNs never pass through a JS number).
 */
export async function copyRunningCluster(
  source: { dataDir: string; connection: pg.ClientConfig },
  target: string,
): Promise<string> {
  const client = new pg.Client({ ...source.connection, application_name: 'pier branch copy' });
  await client.connect();
  try {
    const slot = `pier_branch_${randomBytes(6).toString('hex')}`;
    // Temporary: dropped with this session, whatever happens to Pier.
    await client.query('SELECT pg_create_physical_replication_slot($1, true, true)', [slot]);
    await client.query('SELECT pg_backup_start($1, true)', [slot]);
    await copyTree(source.dataDir, target, true);
    const { rows } = await client.query<{ lsn: string; labelfile: string; spcmapfile: string }>(
      'SELECT lsn::text AS lsn, labelfile, spcmapfile FROM pg_backup_stop(false)',
    );
    const [stop] = rows;
    // The WAL from the backup's start to its end, now that it is written.
    await copyTree(join(source.dataDir, 'pg_wal'), join(target, 'pg_wal'), false);
    await writeOwned(join(target, 'backup_label'), stop.labelfile, source.dataDir);
    if (stop.spcmapfile) await writeOwned(join(target, 'tablespace_map'), stop.spcmapfile, source.dataDir);
    await writeOwned(join(target, 'recovery.signal'), '', source.dataDir);
    await appendFile(
      join(target, 'postgresql.auto.conf'),
      [
        '# A branch: replay to the LSN it was taken at, then start a timeline of its own.',
        // No archive: the WAL it needs is in pg_wal; a restore command that fails reads it from there.
        "restore_command = '/bin/false'",
        `recovery_target_lsn = '${stop.lsn}'`,
        "recovery_target_action = 'promote'",
        // No connections until promoted: a client (or Pier's role set-up) never meets a read-only branch.
        'hot_standby = off',
        '',
      ].join('\n'),
    );
    return stop.lsn;
  } finally {
    await client.end().catch(() => {});
  }
}

/** A stopped cluster is copied whole: it is consistent on disk. */
export async function copyStoppedCluster(source: string, target: string): Promise<void> {
  await cloneDataDir(source, target);
}

async function writeOwned(file: string, text: string, like: string): Promise<void> {
  const info = await lstat(like);
  await writeFile(file, text, { mode: 0o600 });
  await chown(file, info.uid, info.gid);
}

/** Copies a directory tree keeping modes and owners; `skip` leaves out what a base backup omits. */
async function copyTree(source: string, target: string, skip: boolean): Promise<void> {
  const info = await lstat(source);
  await mkdir(target, { recursive: true });
  await chmod(target, info.mode & 0o777);
  await chown(target, info.uid, info.gid);
  const files: [string, string][] = [];
  for (const entry of await readdir(source, { withFileTypes: true })) {
    const from = join(source, entry.name);
    const to = join(target, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'archive_status' || (skip && SKIP_CONTENTS.has(entry.name))) {
        await emptyDirLike(from, to);
        if (skip && entry.name === 'pg_wal')
          await emptyDirLike(join(from, 'archive_status'), join(to, 'archive_status'));
        continue;
      }
      await copyTree(from, to, skip);
    } else if (entry.isFile()) {
      if (skip && SKIP_FILES.has(entry.name)) continue;
      files.push([from, to]);
    }
  }
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let next = files.pop(); next; next = files.pop()) {
        const [from, to] = next;
        const file = await lstat(from).catch(() => undefined);
        if (!file) continue; // removed while copying (a temporary file): the backup does not need it
        await copyFile(from, to).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT') throw error;
        });
        await chmod(to, file.mode & 0o777).catch(() => {});
        await chown(to, file.uid, file.gid).catch(() => {});
      }
    }),
  );
}

async function emptyDirLike(source: string, target: string): Promise<void> {
  const dir = await lstat(source);
  await mkdir(target, { recursive: true });
  await chmod(target, dir.mode & 0o777);
  await chown(target, dir.uid, dir.gid);
}

/** Bytes of a data directory: the databases' files (`base/`) and everything. */
export async function dataDirBytes(dataDir: string): Promise<{ logical: number; onDisk: number }> {
  const logical = await treeBytes(join(dataDir, 'base'));
  const onDisk = await treeBytes(dataDir);
  return { logical, onDisk };
}

async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await treeBytes(path);
    else if (entry.isFile()) total += (await lstat(path).catch(() => ({ size: 0 }))).size;
  }
  return total;
}
