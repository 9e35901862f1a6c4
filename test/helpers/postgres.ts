import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { initCluster, startCluster, stopCluster } from '../../src/engine/local/cluster.js';
import { handToPostgres, preparePostgresRuntime } from '../../src/engine/local/runtime.js';
import { tempDataDir } from './pier.js';

export interface ScratchPostgres {
  /** The unix socket directory: `host` for node-postgres. */
  socketDir: string;
  connect(database?: string): Promise<pg.Client>;
  /** A URL for `--store-url` and the like. */
  url(database: string): string;
  stop(): Promise<void>;
}

/** A throwaway Postgres server of the bundled binaries, on a private socket (initdb, start). */
export async function scratchPostgres(prefix = 'pier-scratch-pg-'): Promise<ScratchPostgres> {
  const root = await tempDataDir(prefix);
  const runtime = await preparePostgresRuntime(join(root, 'runtime'));
  await handToPostgres(runtime, root, 0o755);
  const dataDir = join(root, 'pg');
  await mkdir(dataDir);
  await handToPostgres(runtime, dataDir, 0o700);
  await initCluster(runtime, dataDir);
  const socketDir = join(root, 'sock');
  await startCluster(runtime, { dataDir, socketDir, logFile: join(root, 'pg.log') });
  return {
    socketDir,
    async connect(database = 'postgres') {
      const client = new pg.Client({ host: socketDir, user: 'postgres', database });
      await client.connect();
      return client;
    },
    url: (database) => `postgresql://postgres@localhost/${database}?host=${encodeURIComponent(socketDir)}`,
    async stop() {
      await stopCluster(dataDir);
      await rm(root, { recursive: true, force: true });
    },
  };
}

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
  const server = await scratchPostgres('pier-external-pg-');
  const admin = await server.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return { url: server.url(name), connect: () => server.connect(name), remove: () => server.stop() };
}
