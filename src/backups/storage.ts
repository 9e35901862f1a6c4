import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const runFile = promisify(execFile);

/**
 * Where instances' backups live: each instance's WAL archive and base
 * backups, under its uid. Postgres reaches the WAL archive through the
 * commands given here (archive_command, restore_command); Pier writes and
 * reads base backups through a local staging directory, so a store that is
 * not a local directory (S3-compatible object storage) implements the same
 * interface by uploading from and downloading into one.
 */
export interface BackupStorage {
  /** Makes the archive of one instance ready for its Postgres to write into. */
  prepareArchive(uid: string): Promise<void>;
  /** The `archive_command` of the instance's Postgres. */
  archiveCommand(uid: string): string;
  /** A `restore_command` that reads the instance's archived WAL (a child's recovery reads its parent's). */
  restoreCommand(uid: string): string;
  /**
   * Archives one WAL file of the instance as its archiver would (same
   * atomicity, never overwriting different contents): for WAL a server left
   * unarchived when it died, before its data directory goes.
   */
  archiveWal(uid: string, path: string, file: string): Promise<void>;
  /** Whether a WAL file (segment or timeline history) is in the archive. */
  hasWal(uid: string, file: string): Promise<boolean>;
  /** Archived WAL file names, sorted. */
  listWal(uid: string): Promise<string[]>;
  removeWal(uid: string, files: string[]): Promise<void>;
  /** An empty local directory (not yet existing) to take base backup `id` into… */
  stageBaseBackup(uid: string, id: string): Promise<string>;
  /** …kept once complete: it appears whole or not at all. */
  commitBaseBackup(uid: string, id: string): Promise<void>;
  /** Where to restore from: a local directory holding base backup `id`. */
  baseBackupDir(uid: string, id: string): Promise<string>;
  listBaseBackups(uid: string): Promise<string[]>;
  removeBaseBackup(uid: string, id: string): Promise<void>;
  /** Every instance uid with an archive here. */
  listArchives(): Promise<string[]>;
  /** Removes an instance's whole archive (purge, or retention passed after delete). */
  removeArchive(uid: string): Promise<void>;
}

/** The archive script Pier ships (`bin/pier-wal`). */
export const WAL_SCRIPT = fileURLToPath(new URL('../../../bin/pier-wal', import.meta.url));

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Segments (and a promotion's `.partial`), backup history files, timeline history files. */
const WAL_FILE = /^[0-9A-F]{8}([0-9A-F]{16}(\.partial|\.[0-9A-F]{8}\.backup)?|\.history)$/;
const BACKUP_ID = /^[0-9A-Za-z-]+$/;

/** One shell word: the archive paths are Pier's, but a data dir may hold spaces. */
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

/**
 * Backups in a local directory, `<data-dir>/backups/<uid>/wal/` (the WAL
 * archive, written by Postgres through `pier-wal`) and
 * `<data-dir>/backups/<uid>/base/<id>/` (base backups, written by Pier).
 */
export class LocalBackupStorage implements BackupStorage {
  /**
   * @param root `<data-dir>/backups`
   * @param script `pier-wal`, installed where the Postgres account can run it
   * @param owner the account Postgres runs as (when Pier runs as root)
   */
  constructor(
    private readonly root: string,
    private readonly script: string,
    private readonly owner: { uid: number; gid: number } | null,
  ) {}

  /** Installs `pier-wal` at `target` (readable and runnable by Postgres) and opens the storage. */
  static async open(
    root: string,
    scriptTarget: string,
    owner: { uid: number; gid: number } | null,
  ): Promise<LocalBackupStorage> {
    await mkdir(root, { recursive: true });
    await chmod(root, 0o755);
    const partial = `${scriptTarget}.${process.pid}.tmp`;
    await copyFile(WAL_SCRIPT, partial);
    await chmod(partial, 0o755);
    await rename(partial, scriptTarget);
    const storage = new LocalBackupStorage(root, scriptTarget, owner);
    await storage.removeLeftovers();
    return storage;
  }

  /** A base backup or a removal cut short by a crash leaves a `.partial` or `.removing` directory: drop it. */
  private async removeLeftovers(): Promise<void> {
    for (const uid of await this.listArchives()) {
      const base = join(this.archiveDir(uid), 'base');
      for (const entry of await listDir(base)) {
        if (/^[0-9A-Za-z-]+\.(partial|removing)$/.test(entry))
          await rm(join(base, entry), { recursive: true, force: true });
      }
    }
  }

  private archiveDir(uid: string): string {
    if (!UUID.test(uid)) throw new Error(`not an instance uid: ${uid}`);
    return join(this.root, uid);
  }

  private walDir(uid: string): string {
    return join(this.archiveDir(uid), 'wal');
  }

  private baseDir(uid: string, id: string): string {
    if (!BACKUP_ID.test(id)) throw new Error(`not a backup id: ${id}`);
    return join(this.archiveDir(uid), 'base', id);
  }

  async prepareArchive(uid: string): Promise<void> {
    for (const dir of [this.archiveDir(uid), this.walDir(uid), join(this.archiveDir(uid), 'base')]) {
      await mkdir(dir, { recursive: true });
      await chmod(dir, dir === this.walDir(uid) ? 0o700 : 0o755);
      if (this.owner && dir === this.walDir(uid)) await chown(dir, this.owner.uid, this.owner.gid);
    }
  }

  archiveCommand(uid: string): string {
    return `${shellQuote(this.script)} archive ${shellQuote(this.walDir(uid))} %p %f`;
  }

  restoreCommand(uid: string): string {
    return `${shellQuote(this.script)} restore ${shellQuote(this.walDir(uid))} %f %p`;
  }

  async archiveWal(uid: string, path: string, file: string): Promise<void> {
    if (!WAL_FILE.test(file)) throw new Error(`not a WAL file name: ${file}`);
    // `pier-wal` itself, as the Postgres account: one implementation of the archive's rules.
    await runFile(this.script, ['archive', this.walDir(uid), path, file], {
      uid: this.owner?.uid,
      gid: this.owner?.gid,
      cwd: '/',
    });
  }

  async hasWal(uid: string, file: string): Promise<boolean> {
    return existsSync(join(this.walDir(uid), file));
  }

  async listWal(uid: string): Promise<string[]> {
    return (await listDir(this.walDir(uid))).filter((name) => WAL_FILE.test(name)).sort();
  }

  async removeWal(uid: string, files: string[]): Promise<void> {
    for (const file of files) {
      if (!WAL_FILE.test(file)) throw new Error(`not a WAL file name: ${file}`);
      await unlink(join(this.walDir(uid), file)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    }
  }

  async stageBaseBackup(uid: string, id: string): Promise<string> {
    await this.prepareArchive(uid);
    const staging = `${this.baseDir(uid, id)}.partial`;
    await rm(staging, { recursive: true, force: true });
    return staging;
  }

  async commitBaseBackup(uid: string, id: string): Promise<void> {
    await rename(`${this.baseDir(uid, id)}.partial`, this.baseDir(uid, id));
  }

  async baseBackupDir(uid: string, id: string): Promise<string> {
    const dir = this.baseDir(uid, id);
    if (!existsSync(join(dir, 'backup_label'))) throw new Error(`base backup ${id} of ${uid} is missing`);
    return dir;
  }

  async listBaseBackups(uid: string): Promise<string[]> {
    return (await listDir(join(this.archiveDir(uid), 'base'))).filter((name) => BACKUP_ID.test(name)).sort();
  }

  async removeBaseBackup(uid: string, id: string): Promise<void> {
    // Renamed first, so a removal cut short never leaves a half backup under a backup's name.
    const doomed = `${this.baseDir(uid, id)}.removing`;
    await rename(this.baseDir(uid, id), doomed).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    await rm(doomed, { recursive: true, force: true });
  }

  async listArchives(): Promise<string[]> {
    return (await listDir(this.root)).filter((name) => UUID.test(name)).sort();
  }

  async removeArchive(uid: string): Promise<void> {
    await rm(this.archiveDir(uid), { recursive: true, force: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  return readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
}
