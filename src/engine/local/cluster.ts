import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PierError } from '../../errors.js';
import { handToPostgres, type PostgresRuntime, runPostgresTool } from './runtime.js';

/**
 * One Postgres cluster on this host: a data directory and, when running, a
 * postmaster. Both the control-plane store and every instance are clusters.
 * The postmaster is started detached, so it outlives a crashed Pier; the next
 * Pier adopts it by reading `postmaster.pid`.
 */
export interface ClusterPaths {
  dataDir: string;
  /** Private directory (0700) holding the unix socket; Postgres listens on no TCP port. */
  socketDir: string;
  logFile: string;
}

/** The port number only names the socket file (`.s.PGSQL.5432`); there is no TCP listener. */
export const SOCKET_PORT = 5432;

export interface ClusterObservation {
  running: boolean;
  ready: boolean;
  pid?: number;
}

export async function initCluster(runtime: PostgresRuntime, dataDir: string): Promise<void> {
  const result = await runPostgresTool(runtime, 'initdb', [
    '-D',
    dataDir,
    '-U',
    'postgres',
    '-E',
    'UTF8',
    '--locale=C',
    '--auth=trust',
    '--no-sync',
    '--no-instructions',
    // 1 MB WAL segments: a new instance starts from a 1 MB WAL file instead of a 16 MB one.
    '--wal-segsize=1',
  ]);
  if (result.code !== 0) {
    throw new PierError('INTERNAL_ERROR', `initdb failed for ${dataDir}: ${result.output.trim()}`);
  }
  // Capacity settings live in their own file, rewritten before every start.
  await writeFile(
    join(dataDir, 'postgresql.conf'),
    `${await readFile(join(dataDir, 'postgresql.conf'), 'utf8')}\ninclude_if_exists = 'pier.conf'\n`,
  );
  // `all` does not match replication connections: a standby streams over the socket too.
  await writeFile(join(dataDir, 'pg_hba.conf'), 'local all all trust\nlocal replication all trust\n');
}

/** Writes the settings file the cluster's postgresql.conf includes. */
export async function writeClusterSettings(
  runtime: PostgresRuntime,
  dataDir: string,
  settings: Record<string, string | number | boolean>,
): Promise<void> {
  const lines = Object.entries(settings).map(([key, value]) =>
    typeof value === 'string' ? `${key} = '${value.replaceAll("'", "''")}'` : `${key} = ${value}`,
  );
  const file = join(dataDir, 'pier.conf');
  await writeFile(
    file,
    `# Written by Pier before every start; edits are overwritten.\n${lines.join('\n')}\n`,
  );
  await handToPostgres(runtime, file, 0o600);
}

async function readPostmasterPid(dataDir: string): Promise<{ pid: number; status: string } | null> {
  try {
    const lines = (await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n');
    const pid = Number.parseInt(lines[0], 10);
    if (!Number.isFinite(pid)) return null;
    return { pid, status: (lines[7] ?? '').trim() };
  } catch {
    return null;
  }
}

/** `postmaster.pid`'s status line: a primary is `ready`, a hot standby (or a server in recovery) `standby`. */
function acceptsConnections(status: string): boolean {
  return status === 'ready' || status === 'standby';
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function observeCluster(dataDir: string): Promise<ClusterObservation> {
  const pidFile = await readPostmasterPid(dataDir);
  if (!pidFile || !processAlive(pidFile.pid)) return { running: false, ready: false };
  return { running: true, ready: acceptsConnections(pidFile.status), pid: pidFile.pid };
}

/**
 * Starts the postmaster detached and returns once it accepts connections.
 * Starting a cluster that already runs is a no-op.
 */
export async function startCluster(
  runtime: PostgresRuntime,
  paths: ClusterPaths,
  options: { timeoutMs?: number } = {},
): Promise<number> {
  const current = await observeCluster(paths.dataDir);
  if (current.running && current.pid) {
    await waitUntilReady(paths.dataDir, options.timeoutMs ?? 30_000);
    return current.pid;
  }
  await mkdir(paths.socketDir, { recursive: true });
  await handToPostgres(runtime, paths.socketDir, 0o700);
  const log = openSync(paths.logFile, 'a');
  try {
    if (runtime.user) await handToPostgres(runtime, paths.logFile);
    const child = spawn(
      join(runtime.binDir, 'postgres'),
      ['-D', paths.dataDir, '-k', paths.socketDir, '-p', String(SOCKET_PORT), '-c', 'listen_addresses='],
      {
        detached: true,
        stdio: ['ignore', log, log],
        uid: runtime.user?.uid,
        gid: runtime.user?.gid,
        env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' },
        cwd: '/',
      },
    );
    child.unref();
    let exited: number | null = null;
    child.once('exit', (code) => {
      exited = code ?? -1;
    });
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    while (Date.now() < deadline) {
      if (exited !== null) {
        const tail = (await readFile(paths.logFile, 'utf8')).split('\n').slice(-6).join('\n');
        throw new PierError('INTERNAL_ERROR', `Postgres exited with code ${exited} while starting:\n${tail}`);
      }
      const pidFile = await readPostmasterPid(paths.dataDir);
      if (pidFile && acceptsConnections(pidFile.status) && pidFile.pid === child.pid) return child.pid;
      await sleep(3);
    }
    throw new PierError(
      'INTERNAL_ERROR',
      `Postgres did not become ready within ${options.timeoutMs ?? 30_000} ms`,
    );
  } finally {
    closeSync(log);
  }
}

async function waitUntilReady(dataDir: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const observed = await observeCluster(dataDir);
    if (observed.ready) return;
    if (!observed.running)
      throw new PierError('INTERNAL_ERROR', `Postgres in ${dataDir} stopped while starting`);
    await sleep(5);
  }
  throw new PierError('INTERNAL_ERROR', `Postgres in ${dataDir} did not become ready within ${timeoutMs} ms`);
}

/**
 * Stops the postmaster (fast shutdown: rolls back open transactions, keeps
 * every committed row) and waits until the process is gone.
 */
export async function stopCluster(dataDir: string, options: { timeoutMs?: number } = {}): Promise<void> {
  const pidFile = await readPostmasterPid(dataDir);
  if (!pidFile || !processAlive(pidFile.pid)) return;
  try {
    process.kill(pidFile.pid, 'SIGINT');
  } catch {
    return;
  }
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (processAlive(pidFile.pid)) {
    if (Date.now() > deadline) {
      // Immediate shutdown: crash-safe, WAL replays on next start.
      process.kill(pidFile.pid, 'SIGQUIT');
      await sleep(200);
      if (!processAlive(pidFile.pid)) break;
      process.kill(pidFile.pid, 'SIGKILL');
    }
    await sleep(3);
  }
}
