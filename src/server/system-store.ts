import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import {
  initCluster,
  SOCKET_PORT,
  startCluster,
  stopCluster,
  writeClusterSettings,
} from '../engine/local/cluster.js';
import { handToPostgres, type PostgresRuntime } from '../engine/local/runtime.js';
import { PierError } from '../errors.js';

const STORE_DATABASE = 'pier';

/**
 * The embedded control-plane store: a Postgres cluster of its own in
 * `<data-dir>/store`, reachable only over a private unix socket. Returns the
 * connection URL. Adopts a store server left running by a killed Pier.
 *
 * A store is made only where there is none at all, and only when
 * `mayCreate` (the data dir shows no sign of an earlier store): an existing
 * store directory is never removed or overwritten, whatever it holds.
 */
export async function startSystemStore(
  runtime: PostgresRuntime,
  layout: { storeDir: string; runDir: string; logsDir: string },
  options: { mayCreate: (storeDir: string) => string | undefined },
): Promise<string> {
  const socketDir = join(layout.runDir, 'store');
  if (!existsSync(join(layout.storeDir, 'PG_VERSION'))) {
    const leftovers = await readdir(layout.storeDir).catch(() => []);
    if (leftovers.length > 0) {
      throw new PierError(
        'INVALID_STATE',
        `The store directory ${layout.storeDir} is not a Postgres cluster (PG_VERSION is missing) but is not empty. Pier never overwrites it: restore it from a backup, or move it aside and start with another --data-dir.`,
      );
    }
    const refusal = options.mayCreate(layout.storeDir);
    if (refusal) throw new PierError('INVALID_STATE', refusal);
    // initdb into a side directory and rename: a crash mid-initdb leaves nothing half-made.
    // `store.partial` is only ever made here, so it is Pier's own garbage.
    const partial = `${layout.storeDir}.partial`;
    await rm(partial, { recursive: true, force: true });
    if (existsSync(layout.storeDir)) await rmdir(layout.storeDir); // empty: fails rather than delete anything
    await mkdir(partial, { recursive: true });
    await handToPostgres(runtime, partial, 0o700);
    await initCluster(runtime, partial);
    await rename(partial, layout.storeDir);
  }
  await writeClusterSettings(runtime, layout.storeDir, {
    max_connections: 100,
    shared_buffers: '64MB',
    // The store holds every decision Pier made: keep it durable.
    fsync: true,
    synchronous_commit: 'on',
  });
  await startCluster(runtime, {
    dataDir: layout.storeDir,
    socketDir,
    logFile: join(layout.logsDir, 'store.log'),
  });
  const admin = new pg.Client({ host: socketDir, port: SOCKET_PORT, user: 'postgres', database: 'postgres' });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [STORE_DATABASE]);
    if (!rowCount) await admin.query(`CREATE DATABASE ${STORE_DATABASE}`);
  } finally {
    await admin.end();
  }
  return `postgresql://postgres@localhost:${SOCKET_PORT}/${STORE_DATABASE}?host=${encodeURIComponent(socketDir)}`;
}

export async function stopSystemStore(layout: { storeDir: string }): Promise<void> {
  await stopCluster(layout.storeDir);
}
