import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { initCluster, startCluster, stopCluster } from '../../src/engine/local/cluster.js';
import { handToPostgres, preparePostgresRuntime } from '../../src/engine/local/runtime.js';
import { tempDataDir } from './pier.js';

export interface ExternalPostgres {
  /** A `--store-url` for an empty database `name`. */
  url: string;
  /** A client of that database, as its owner. */
  connect(): Promise<pg.Client>;
  /** Stops the server and removes its files. */
  remove(): Promise<void>;
}

/**
 * A Postgres server of its own with one empty database, standing in for an
 * external store (`--store-url`).
 *
 * @example
 * const external = await startExternalPostgres('control_plane');
 * const pier = await startPier({ args: ['--store-url', external.url] });
 */
export async function startExternalPostgres(name: string): Promise<ExternalPostgres> {
  const root = await tempDataDir('pier-external-pg-');
  const runtime = await preparePostgresRuntime(join(root, 'runtime'));
  await handToPostgres(runtime, root, 0o755);
  const dataDir = join(root, 'pg');
  await mkdir(dataDir);
  await handToPostgres(runtime, dataDir, 0o700);
  await initCluster(runtime, dataDir);
  const socketDir = join(root, 'sock');
  await startCluster(runtime, { dataDir, socketDir, logFile: join(root, 'pg.log') });
  const admin = new pg.Client({ host: socketDir, user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return {
    url: `postgresql://postgres@localhost/${name}?host=${encodeURIComponent(socketDir)}`,
    connect: async () => {
      const client = new pg.Client({ host: socketDir, user: 'postgres', database: name });
      await client.connect();
      return client;
    },
    remove: async () => {
      await stopCluster(dataDir);
      await rm(root, { recursive: true, force: true });
    },
  };
}
