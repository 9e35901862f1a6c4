import { appendFile, copyFile, open, readFile, rename, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ControlContext } from '../control/context.js';
import { optionalInteger } from '../control/validate.js';
import { invalidParameter, PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { appForCaller } from './service.js';

/**
 * An app's log: `<data dir>/apps/<name>/logs/app.log`, the process's
 * stdout and stderr (opened O_APPEND and handed to it, so it keeps logging
 * while Pier restarts) and Pier's own lines about it (`[pier] …`). Bounded:
 * past MAX_LOG_BYTES the file is copied to app.log.1 (app.log.2, … shift
 * on, KEPT_LOGS in all) and truncated in place — the process's descriptor
 * stays valid, as with logrotate's copytruncate.
 */
const MAX_LOG_BYTES = 5 * 1024 * 1024;
const KEPT_LOGS = 3;
const LOG_FILE = 'app.log';

export function appDir(dataDir: string, appName: string): string {
  return join(dataDir, 'apps', appName);
}

export function appLogFile(dataDir: string, appName: string): string {
  return join(appDir(dataDir, appName), 'logs', LOG_FILE);
}

/** A descriptor of the log for a new process (the caller closes its copy once the child has it). */
export async function openLogForProcess(file: string): Promise<import('node:fs/promises').FileHandle> {
  return open(file, 'a', 0o600);
}

/** Pier's line about the app, in the app's log. */
export async function logLine(file: string, message: string): Promise<void> {
  await appendFile(file, `[pier] ${new Date().toISOString()} ${message}\n`, { mode: 0o600 });
}

/** How many bytes the rotations so far moved out of the log (kept beside it): offsets count from the first byte ever written. */
async function rotatedBytes(file: string): Promise<number> {
  return Number((await readFile(`${file}.rotated`, 'utf8').catch(() => '0')).trim()) || 0;
}

/** Rotates the log when it has grown past `maxBytes`. */
export async function rotateIfLarge(file: string, maxBytes = MAX_LOG_BYTES): Promise<boolean> {
  const size = (await stat(file).catch(() => undefined))?.size ?? 0;
  if (size <= maxBytes) return false;
  for (let i = KEPT_LOGS - 1; i >= 1; i--) await rename(`${file}.${i}`, `${file}.${i + 1}`).catch(() => {});
  await copyFile(file, `${file}.1`);
  const copied = (await stat(`${file}.1`)).size;
  await writeFile(`${file}.rotated`, `${(await rotatedBytes(file)) + copied}\n`);
  // Whatever the process wrote between the copy and here is lost: the price of copytruncate.
  await truncate(file, 0);
  return true;
}

async function readRange(file: string, from: number, to?: number): Promise<Buffer> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return Buffer.alloc(0);
  try {
    const size = (await handle.stat()).size;
    const end = Math.min(to ?? size, size);
    if (end <= from) return Buffer.alloc(0);
    const buffer = Buffer.alloc(end - from);
    await handle.read(buffer, 0, buffer.length, from);
    return buffer;
  } finally {
    await handle.close();
  }
}

/**
 * What `pier apps logs` shows: with `offset` (the `nextOffset` of the last
 * read) what was written since, else the last `tailBytes`. Offsets count
 * every byte ever written to the log, so a read after a rotation continues
 * in app.log.1 and then the new app.log.
 */
export async function readAppLog(
  file: string,
  options: { offset?: number; tailBytes?: number },
): Promise<{ text: string; nextOffset: number }> {
  const base = await rotatedBytes(file);
  const size = (await stat(file).catch(() => undefined))?.size ?? 0;
  const end = base + size;
  if (options.offset === undefined) {
    const from = Math.max(0, size - (options.tailBytes ?? 64 * 1024));
    const text = (await readRange(file, from, size)).toString('utf8');
    // Start on a whole line.
    return { text: from > 0 ? text.slice(text.indexOf('\n') + 1) : text, nextOffset: end };
  }
  if (options.offset >= base) {
    return { text: (await readRange(file, options.offset - base, size)).toString('utf8'), nextOffset: end };
  }
  const previous = (await stat(`${file}.1`).catch(() => undefined))?.size ?? 0;
  const rest = await readRange(`${file}.1`, Math.max(0, options.offset - (base - previous)));
  const now = await readRange(file, 0, size);
  return { text: Buffer.concat([rest, now]).toString('utf8'), nextOffset: end };
}

/** The last lines of the log, for a message about a process that failed. */
export async function lastLines(file: string, count = 8): Promise<string> {
  const { text } = await readAppLog(file, { tailBytes: 4096 });
  return text
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('[pier] '))
    .slice(-count)
    .join('\n');
}

/**
 * `GET /api/2.0/apps/{name}/logs` (Pier's own): the app's log, the last
 * `tail_bytes` (default 64 KiB) or, with `offset`, what came since.
 */
export async function appLogs(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
  query: { offset?: string; tail_bytes?: string },
): Promise<{ text: string; nextOffset: number }> {
  const app = await appForCaller(ctx, caller, name);
  if (!ctx.endpoints) throw new PierError('INVALID_STATE', 'Pier is still starting; try again in a moment.');
  const offset = optionalInteger(query, 'offset');
  const tailBytes = optionalInteger(query, 'tail_bytes');
  if ((offset ?? 0) < 0 || (tailBytes ?? 0) < 0)
    throw invalidParameter('offset and tail_bytes must be 0 or more.');
  return readAppLog(appLogFile(ctx.endpoints.dataDir, app.name), {
    offset,
    tailBytes: Math.min(tailBytes ?? 64 * 1024, MAX_LOG_BYTES),
  });
}
