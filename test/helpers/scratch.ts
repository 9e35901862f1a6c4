import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

/**
 * A maker of temporary directories for one test file; all are removed when
 * the file's tests end.
 *
 * @example
 * const scratchDir = scratchDirectories();
 * const dir = await scratchDir('pier-delta-');
 */
export function scratchDirectories(): (prefix: string) => Promise<string> {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  return async (prefix) => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}
