import { chmod, chown, copyFile, lstat, mkdir, readdir, readlink, symlink } from 'node:fs/promises';
import { join } from 'node:path';

/** Copies in flight at once: a cluster is ~1,300 small files and each costs a disk round trip. */
const CONCURRENCY = 8;

/**
 * Copies a stopped cluster's data directory, keeping modes and ownership.
 * Done in this process (not by `cp` children) so a Pier killed mid-copy
 * leaves no copier running: the next Pier removes the partial copy safely.
 */
export async function cloneDataDir(source: string, target: string): Promise<void> {
  const files: [string, string][] = [];
  await copyTree(source, target, files);
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    for (let next = files.pop(); next; next = files.pop()) {
      const [from, to] = next;
      const info = await lstat(from);
      await copyFile(from, to);
      await chmod(to, info.mode & 0o777);
      await chown(to, info.uid, info.gid);
    }
  });
  await Promise.all(workers);
}

/** Recreates the directories (and symlinks) now; collects regular files to copy. */
async function copyTree(source: string, target: string, files: [string, string][]): Promise<void> {
  const info = await lstat(source);
  await mkdir(target);
  await chmod(target, info.mode & 0o777);
  await chown(target, info.uid, info.gid);
  for (const entry of await readdir(source, { withFileTypes: true })) {
    if (entry.name === 'postmaster.pid') continue;
    const from = join(source, entry.name);
    const to = join(target, entry.name);
    if (entry.isDirectory()) await copyTree(from, to, files);
    else if (entry.isSymbolicLink()) await symlink(await readlink(from), to);
    else files.push([from, to]);
  }
}
