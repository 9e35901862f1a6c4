import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { processAlive } from '../engine/local/cluster.js';
import { PierError } from '../errors.js';
import { writeFileAtomic } from '../files.js';

/**
 * `--data-dir`, else `$PIER_HOME`, else `~/.pier` — or `/var/lib/pier` for
 * root, whose home the unprivileged Postgres account cannot enter.
 */
export function resolveDataDir(flag?: string): string {
  const fallback = process.getuid?.() === 0 ? '/var/lib/pier' : join(homedir(), '.pier');
  return resolve(flag || process.env.PIER_HOME || fallback);
}

/** Where everything lives under the data dir (see docs/operations.md). */
export function dataDirLayout(dataDir: string) {
  return {
    dataDir,
    runtimeDir: join(dataDir, 'runtime'),
    storeDir: join(dataDir, 'store'),
    instancesDir: join(dataDir, 'instances'),
    /** Instance storage the store does not know, moved aside (never deleted). */
    quarantineDir: join(dataDir, 'quarantine'),
    templateDir: join(dataDir, 'template'),
    /** Each instance's WAL archive and base backups (see docs/backups.md). */
    backupsDir: join(dataDir, 'backups'),
    runDir: join(dataDir, 'run'),
    logsDir: join(dataDir, 'logs'),
    tlsDir: join(dataDir, 'tls'),
    keysDir: join(dataDir, 'keys'),
    lakehouseDir: join(dataDir, 'lakehouse'),
    pidFile: join(dataDir, 'pier.pid'),
    stateFile: join(dataDir, 'pier.json'),
    adminTokenFile: join(dataDir, 'admin-token'),
    nodeIdFile: join(dataDir, 'node-id'),
    /** The id of the store this data dir belongs to (see store-identity.ts). */
    storeIdFile: join(dataDir, 'store-id'),
  };
}

export type DataDirLayout = ReturnType<typeof dataDirLayout>;

/** What a running Pier publishes for `pier status` and `pier down`. */
export interface PierState {
  pid: number;
  dataDir: string;
  apiUrl: string;
  host: string;
  apiPort: number;
  proxyPort: number;
  caCertPath?: string;
  /** "native", or "javascript (<why the native path is not used>)". */
  proxyTlsPath?: string;
  adminUserName: string;
  startedAt: string;
}

export async function ensureWritableDataDir(dataDir: string): Promise<void> {
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o755 });
    await access(dataDir, constants.W_OK);
  } catch (cause) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `The data dir ${dataDir} is not writable (${(cause as NodeJS.ErrnoException).code}). Pass --data-dir with a directory you own, or set PIER_HOME.`,
      { cause },
    );
  }
}

/**
 * Claims the data dir for this process, atomically: the pid file is created
 * only if absent (`wx`), so of two `pier up` started at once exactly one
 * wins. A pid file whose process is gone (Pier was killed) is taken over
 * under a second short-lived lock, so two starts cannot both take it over.
 */
export async function lockDataDir(layout: DataDirLayout): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await writeFile(layout.pidFile, `${process.pid}\n`, { flag: 'wx' });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readPid(layout.pidFile);
    if (holder === process.pid) return;
    if (holder && processAlive(holder)) {
      throw new PierError(
        'INVALID_STATE',
        `Pier is already running on ${layout.dataDir} (pid ${holder}). Stop it with \`pier down --data-dir ${layout.dataDir}\`, or use another --data-dir.`,
      );
    }
    // No pid yet: another start created the file this instant and is writing it. Look again.
    if (holder === undefined && attempt < 5) await sleep(10);
    else await removeStalePidFile(layout.pidFile, holder);
  }
  throw new PierError(
    'INVALID_STATE',
    `Could not lock ${layout.dataDir}: another Pier keeps starting there.`,
  );
}

/** Removes the pid file if it still names `stale`, holding `<pid file>.takeover` while it looks. */
async function removeStalePidFile(pidFile: string, stale: number | undefined): Promise<void> {
  const mutex = `${pidFile}.takeover`;
  try {
    await writeFile(mutex, `${process.pid}\n`, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // Another start is taking over; a mutex left by a start that died is removed.
    const owner = await readPid(mutex);
    if (owner && !processAlive(owner)) await rm(mutex, { force: true });
    await sleep(10);
    return;
  }
  try {
    if ((await readPid(pidFile)) === stale) await rm(pidFile, { force: true });
  } finally {
    await rm(mutex, { force: true });
  }
}

export async function unlockDataDir(layout: DataDirLayout): Promise<void> {
  if ((await readPid(layout.pidFile)) === process.pid) {
    await rm(layout.pidFile, { force: true });
    await rm(layout.stateFile, { force: true });
  }
}

export async function readPid(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(pidFile, 'utf8'), 10);
    return Number.isFinite(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export async function readState(layout: DataDirLayout): Promise<PierState | undefined> {
  try {
    return JSON.parse(await readFile(layout.stateFile, 'utf8')) as PierState;
  } catch {
    return undefined;
  }
}

export async function readAdminToken(
  layout: Pick<DataDirLayout, 'adminTokenFile'>,
): Promise<string | undefined> {
  try {
    return (await readFile(layout.adminTokenFile, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/**
 * This data dir's identity as a Pier node, made once. Instances created
 * through this node run here, even when several nodes share one store.
 */
export async function readOrCreateNodeId(layout: Pick<DataDirLayout, 'nodeIdFile'>): Promise<string> {
  try {
    const existing = (await readFile(layout.nodeIdFile, 'utf8')).trim();
    if (existing) return existing;
  } catch {
    // first start
  }
  const nodeId = randomUUID();
  await writeFileAtomic(layout.nodeIdFile, `${nodeId}\n`);
  return nodeId;
}
