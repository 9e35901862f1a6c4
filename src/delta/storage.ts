import { promises as fs } from 'node:fs';
import { isAbsolute, join, normalize, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AsyncBuffer } from 'hyparquet';
import { PierError } from '../errors.js';
import { isWithin, resolveBelow, resolveOnDisk } from './local-paths.js';

/** One entry of a directory listing. */
export interface FileStatus {
  /** Name inside the listed directory (no slashes). */
  name: string;
  size: number;
  /** Milliseconds since the epoch. */
  modificationTime: number;
}

/**
 * What the Delta reader needs from a file system or object store. Paths are
 * relative to the table root, or absolute URIs / paths (absolute `add.path`,
 * `p` deletion vectors, sidecars), which must lie inside the table's
 * location: a table never reads another table's files, or any other file.
 * Local paths and `file://` URIs are implemented here; an S3-compatible
 * store implements the same calls.
 */
export interface TableStorage {
  /** The table location as the user gave it. */
  readonly location: string;
  /**
   * Files (not directories) in `dir`, sorted by name; names `>= startFrom`
   * only when given, as an object store lists with `start-after`.
   * A missing directory is an empty listing.
   */
  list(dir: string, startFrom?: string): Promise<FileStatus[]>;
  /** The whole file; `null` when it does not exist. */
  readIfExists(path: string): Promise<Uint8Array | null>;
  exists(path: string): Promise<boolean>;
  /** Bytes `[start, end)` of a file. */
  readRange(path: string, start: number, end: number): Promise<Uint8Array>;
  /** A random-access view for the parquet decoder. */
  openParquet(path: string): Promise<AsyncBuffer>;
}

/**
 * Storage for a table location: a local path or a `file://` URI.
 *
 * @example
 * const storage = storageFor('/data/lake/daily_revenue');
 * const commits = await storage.list('_delta_log');
 */
export function storageFor(location: string): TableStorage {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location) && !location.startsWith('file:')) {
    const scheme = location.slice(0, location.indexOf(':'));
    throw new PierError(
      'NOT_IMPLEMENTED',
      `Delta tables at '${scheme}://' locations are not supported yet; use a local path or file:// URI.`,
    );
  }
  return new LocalStorage(location);
}

class LocalStorage implements TableStorage {
  /** The table root, absolute and normalised. */
  private readonly root: string;
  private realRoot?: Promise<string>;

  constructor(readonly location: string) {
    this.root = resolve(location.startsWith('file:') ? fileURLToPath(location) : location);
  }

  /**
   * The file a log path names, checked to lie inside the table root:
   * lexically first (absolute paths, `..`), then on disk (symbolic links),
   * so a log can point at nothing outside. A missing file stays missing.
   */
  private async resolve(path: string): Promise<string> {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path) && !path.startsWith('file:')) {
      throw new PierError('NOT_IMPLEMENTED', `Delta file at a non-local URI is not supported: ${path}`);
    }
    let full: string;
    try {
      full = path.startsWith('file:')
        ? normalize(fileURLToPath(path))
        : isAbsolute(path)
          ? normalize(path)
          : join(this.root, path);
    } catch (cause) {
      throw this.outside(path, cause);
    }
    if (!isWithin(full, this.root)) throw this.outside(path);
    this.realRoot ??= resolveOnDisk(this.root).then(({ real, complete }) => (complete ? real : this.root));
    const root = await this.realRoot;
    const { real, complete } = await resolveBelow(root, relative(this.root, full));
    if (!isWithin(real, root)) throw this.outside(path);
    return complete ? real : full;
  }

  private outside(path: string, cause?: unknown): PierError {
    return new PierError(
      'INVALID_STATE',
      `Delta table at ${this.location} refers to a file outside its directory (${path}); Pier reads only the files inside a table's location.`,
      { cause },
    );
  }

  async list(dir: string, startFrom?: string): Promise<FileStatus[]> {
    const full = await this.resolve(dir);
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(full, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const names = entries
      .filter((entry) => entry.isFile() && (startFrom === undefined || entry.name >= startFrom))
      .map((entry) => entry.name)
      .sort();
    return Promise.all(
      names.map(async (name) => {
        const stat = await fs.stat(join(full, name));
        return { name, size: stat.size, modificationTime: Math.floor(stat.mtimeMs) };
      }),
    );
  }

  async readIfExists(path: string): Promise<Uint8Array | null> {
    try {
      return await fs.readFile(await this.resolve(path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async exists(path: string): Promise<boolean> {
    try {
      await fs.stat(await this.resolve(path));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
  }

  async readRange(path: string, start: number, end: number): Promise<Uint8Array> {
    const handle = await fs.open(await this.resolve(path), 'r');
    try {
      const buffer = Buffer.alloc(end - start);
      const { bytesRead } = await handle.read(buffer, 0, end - start, start);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  async openParquet(path: string): Promise<AsyncBuffer> {
    const filename = await this.resolve(path);
    let size: number;
    try {
      size = (await fs.stat(filename)).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new PierError(
          'INVALID_STATE',
          `Delta table at ${this.location} references a data file that does not exist: ${path}. ` +
            'The table may have been vacuumed past this version.',
          { cause: error },
        );
      }
      throw error;
    }
    return {
      byteLength: size,
      slice: (start: number, end?: number) => readSlice(filename, start, end ?? size),
    };
  }
}

async function readSlice(filename: string, start: number, end: number): Promise<ArrayBuffer> {
  if (start >= end) return new ArrayBuffer(0);
  const handle = await fs.open(filename, 'r');
  try {
    const buffer = new Uint8Array(end - start);
    let filled = 0;
    while (filled < buffer.byteLength) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.byteLength - filled, start + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.buffer.slice(0, filled);
  } finally {
    await handle.close();
  }
}
