import { promises as fs, type Stats } from 'node:fs';
import { isAbsolute, join, sep } from 'node:path';

/**
 * Resolving local paths on disk without letting the answer depend on
 * anything outside the directory a path must stay in: the catalog uses it
 * for storage locations, the Delta reader for the files a table refers to.
 */

/** At most this many symbolic links are followed while resolving one path (as Linux' ELOOP). */
const MAX_LINKS = 40;

/** `path` is `dir` or lies below it (both absolute and normalised). */
export function isWithin(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === sep ? dir : `${dir}${sep}`);
}

/**
 * Where a path leads on disk, as far as it exists: `real` is the realpath of
 * its deepest existing part (every symbolic link followed), `complete` says
 * whether that is the whole path. A dangling link resolves to where it
 * points, so a caller can decide by `real` alone, whatever exists beyond it.
 *
 * @example
 * const { real, complete } = await resolveOnDisk('/data/lake/t');
 * if (!isWithin(real, '/data/lake')) throw notAllowed();
 */
export async function resolveOnDisk(path: string): Promise<{ real: string; complete: boolean }> {
  return resolveBelow(sep, path);
}

/** resolveOnDisk for `relative` below `realBase`, a directory already resolved. */
export async function resolveBelow(
  realBase: string,
  relative: string,
): Promise<{ real: string; complete: boolean }> {
  let real = realBase;
  const pending = relative.split(sep).filter(Boolean);
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '.') continue;
    if (part === '..') {
      real = join(real, '..');
      continue;
    }
    const next = join(real, part);
    let stat: Stats;
    try {
      stat = await fs.lstat(next);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { real, complete: false };
      throw error;
    }
    if (stat.isSymbolicLink()) {
      if (++links > MAX_LINKS) return { real: next, complete: false };
      const target = await fs.readlink(next);
      pending.unshift(...target.split(sep).filter(Boolean));
      if (isAbsolute(target)) real = sep;
      continue;
    }
    if (pending.length > 0 && !stat.isDirectory()) return { real: next, complete: false };
    real = next;
  }
  return { real, complete: true };
}
