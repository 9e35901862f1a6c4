import { copyFile, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { takeBaseBackup } from './base-backup.js';
import { handToPostgres, type PostgresRuntime } from './runtime.js';

/**
 * Copies a running cluster into `target` as the start of a branch: a base
 * backup (takeBaseBackup) with the WAL segments in the source's pg_wal
 * beside it, so recovering to the returned stop LSN needs the source's WAL
 * archive only for what was recycled meanwhile. Returns that LSN (as text:
 * LSNs never pass through a JS number).
 */
export async function copyForBranch(
  runtime: PostgresRuntime,
  source: { dataDir: string; connection: pg.ClientConfig },
  target: string,
): Promise<string> {
  const backup = await takeBaseBackup(runtime, source.connection, source.dataDir, target, {
    label: 'pier branch',
    waitForArchive: false,
  });
  // Only the segments the backup spans: pg_wal also holds recycled segments for the future (up to max_wal_size).
  const client = new pg.Client(source.connection);
  await client.connect();
  let lastWalFile: string;
  try {
    const { rows } = await client.query<{ file: string }>('SELECT pg_walfile_name($1::pg_lsn) AS file', [
      backup.stopLsn,
    ]);
    lastWalFile = rows[0].file;
  } finally {
    await client.end().catch(() => {});
  }
  await copyWal(
    runtime,
    join(source.dataDir, 'pg_wal'),
    join(target, 'pg_wal'),
    backup.startWalFile,
    lastWalFile,
  );
  return backup.stopLsn;
}

/**
 * A `restore_command` that reads a segment from pg_wal when it is there (a
 * failing restore makes Postgres use it) and asks the archive only for a
 * segment recycled meanwhile: no archive process per file the copy holds,
 * nor per timeline history Postgres probes for (a source keeps every
 * history file in its pg_wal, and the copy has them).
 */
export function localFirstRestoreCommand(archiveRestore: string): string {
  return `test -f pg_wal/%f && exit 1; case %f in *.history) exit 1;; esac; ${archiveRestore}`;
}

/**
 * The WAL segments from `first` to `last` (names of one timeline sort in
 * LSN order) and every timeline history in the source's pg_wal, now that
 * the backup has stopped.
 */
async function copyWal(
  runtime: PostgresRuntime,
  from: string,
  to: string,
  first: string,
  last: string,
): Promise<void> {
  for (const entry of await readdir(from, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const segment = /^[0-9A-F]{24}$/.test(entry.name);
    if (!segment && !entry.name.endsWith('.history')) continue;
    if (segment && (entry.name.slice(0, 8) !== first.slice(0, 8) || entry.name < first || entry.name > last))
      continue;
    const ok = await copyFile(join(from, entry.name), join(to, entry.name)).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return false; // recycled meanwhile: the archive has it
        throw error;
      },
    );
    if (ok) await handToPostgres(runtime, join(to, entry.name), 0o600);
  }
}

/** Bytes of a data directory: the databases' files (`base/`) and everything. */
export async function dataDirBytes(dataDir: string): Promise<{ logical: number; onDisk: number }> {
  return { logical: await treeBytes(join(dataDir, 'base')), onDisk: await treeBytes(dataDir) };
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
