import { randomUUID } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Writes a file so that it appears whole or not at all, readable only by
 * its owner from the first byte: a new temp file made with `mode`, flushed,
 * then renamed over the target (whose old mode does not carry over).
 */
export async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = join(dirname(path), `.${randomUUID()}.tmp`);
  const file = await open(temp, 'wx', mode);
  try {
    try {
      await file.chmod(mode); // the umask may have narrowed it; never widened
      await file.writeFile(content);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  // The rename itself survives a power loss only once the directory is flushed.
  const directory = await open(dirname(path), 'r');
  await directory.sync().finally(() => directory.close());
}
