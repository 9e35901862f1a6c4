import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * Copies a stopped cluster's data directory. A cluster is ~1,300 small
 * files and creating each costs a disk round trip, so the copy runs as
 * several `cp -a` processes side by side (one per database directory and
 * top-level entry): about half the time of one `cp -a` on a 2-core VM.
 * Ownership and modes are kept.
 */
export async function cloneDataDir(source: string, target: string): Promise<void> {
  const info = await stat(source);
  await mkdir(target);
  await chmod(target, info.mode & 0o777);
  await chown(target, info.uid, info.gid);
  const copies: [string, string][] = [];
  for (const entry of await readdir(source)) {
    if (entry === 'postmaster.pid') continue;
    if (entry === 'base') {
      const base = await stat(join(source, 'base'));
      await mkdir(join(target, 'base'));
      await chmod(join(target, 'base'), base.mode & 0o777);
      await chown(join(target, 'base'), base.uid, base.gid);
      for (const database of await readdir(join(source, 'base'))) {
        copies.push([join(source, 'base', database), join(target, 'base', database)]);
      }
    } else {
      copies.push([join(source, entry), join(target, entry)]);
    }
  }
  // Big pieces first so the stragglers are small.
  const queue = copies.sort((a, b) => Number(b[0].includes('/base/')) - Number(a[0].includes('/base/')));
  const workers = Array.from({ length: 6 }, async () => {
    for (let next = queue.shift(); next; next = queue.shift())
      await execFileAsync('cp', ['-a', next[0], next[1]]);
  });
  await Promise.all(workers);
}
