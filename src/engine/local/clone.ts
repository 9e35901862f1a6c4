import { constants } from 'node:fs';
import { chmod, chown, copyFile, lstat, mkdir, readdir, readlink, symlink } from 'node:fs/promises';
import { join } from 'node:path';

/** Copies in flight at once: a cluster is ~1,300 small files and each costs a disk round trip. */
const CONCURRENCY = 8;

/**
 * What to do with one entry of the tree, by its path relative to the root
 * (`pg_wal/000000010000000000000001`): copy it, or skip it (a skipped
 * directory's contents are skipped; the directory itself is still made when
 * `keep-dir`).
 */
export type CopyFilter = (relativePath: string, isDirectory: boolean) => 'copy' | 'skip' | 'keep-dir';

export interface CopyOptions {
  filter?: CopyFilter;
  /**
   * The source is a running cluster: a file removed while the copy runs (a
   * dropped table, a finished temp file) is not an error. WAL replay from the
   * backup's start point recreates whatever the copy saw torn or missed.
   */
  live?: boolean;
}

/**
 * Copies a cluster's data directory, keeping modes and ownership, by reflink
 * (`COPYFILE_FICLONE`: a copy-on-write clone on btrfs, XFS, …; a plain copy
 * where the file system has none). Done in this process (not by `cp`
 * children) so a Pier killed mid-copy leaves no copier running: the next Pier
 * removes the partial copy safely. Returns the bytes copied.
 */
export async function cloneDataDir(
  source: string,
  target: string,
  options: CopyOptions = {},
): Promise<number> {
  const files: [string, string][] = [];
  await copyTree(source, target, '', files, options);
  let bytes = 0;
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    for (let next = files.pop(); next; next = files.pop()) {
      const [from, to] = next;
      try {
        const info = await lstat(from);
        await copyFile(from, to, constants.COPYFILE_FICLONE);
        await chmod(to, info.mode & 0o777);
        await chown(to, info.uid, info.gid);
        bytes += info.size;
      } catch (error) {
        if (!(options.live && (error as NodeJS.ErrnoException).code === 'ENOENT')) throw error;
      }
    }
  });
  await Promise.all(workers);
  return bytes;
}

/** Recreates the directories (and symlinks) now; collects regular files to copy. */
async function copyTree(
  source: string,
  target: string,
  relative: string,
  files: [string, string][],
  options: CopyOptions,
): Promise<void> {
  const info = await lstat(source);
  await mkdir(target);
  await chmod(target, info.mode & 0o777);
  await chown(target, info.uid, info.gid);
  const entries = await readdir(source, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (options.live && error.code === 'ENOENT') return [];
    throw error;
  });
  for (const entry of entries) {
    if (entry.name === 'postmaster.pid') continue;
    const from = join(source, entry.name);
    const to = join(target, entry.name);
    const path = relative ? `${relative}/${entry.name}` : entry.name;
    const verdict = options.filter?.(path, entry.isDirectory()) ?? 'copy';
    if (verdict === 'skip') continue;
    if (entry.isDirectory()) {
      if (verdict === 'keep-dir') await copyTree(from, to, path, [], { ...options, filter: () => 'skip' });
      else await copyTree(from, to, path, files, options);
    } else if (entry.isSymbolicLink()) await symlink(await readlink(from), to);
    else files.push([from, to]);
  }
}
