import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
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

const STORE_DATABASE = 'pier';

/**
 * The embedded control-plane store: a Postgres cluster of its own in
 * `<data-dir>/store`, reachable only over a private unix socket. Returns the
 * connection URL. Adopts a store server left running by a killed Pier.
 */
export async function startSystemStore(
  runtime: PostgresRuntime,
  layout: { storeDir: string; runDir: string; logsDir: string },
): Promise<string> {
  const socketDir = join(layout.runDir, 'store');
  if (!existsSync(join(layout.storeDir, 'PG_VERSION'))) {
    // initdb into a side directory and rename: a crash mid-initdb leaves nothing half-made.
    const partial = `${layout.storeDir}.partial`;
    await rm(partial, { recursive: true, force: true });
    await rm(layout.storeDir, { recursive: true, force: true });
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
