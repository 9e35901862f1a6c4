import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { initCluster, SOCKET_PORT, startCluster, stopCluster } from './cluster.js';
import { handToPostgres, type PostgresRuntime } from './runtime.js';

const READY_MARKER = 'pier-template.ready';

/** What every new instance starts with, besides an empty `postgres` database. */
const TEMPLATE_SQL = [
  'CREATE ROLE databricks_superuser NOLOGIN CREATEDB CREATEROLE BYPASSRLS',
  'GRANT pg_read_all_data, pg_write_all_data, pg_monitor, pg_signal_backend TO databricks_superuser WITH ADMIN OPTION',
  'GRANT CREATE ON SCHEMA public TO databricks_superuser',
  'CREATE DATABASE databricks_postgres',
  // Schemas and trusted extensions (e.g. databricks_auth) need CREATE on the database.
  'GRANT CREATE ON DATABASE postgres, databricks_postgres TO databricks_superuser',
];

const PER_DATABASE_SQL = ['GRANT CREATE ON SCHEMA public TO databricks_superuser'];

/**
 * Prepares, once per data dir, the cluster instances are cloned from:
 * initdb, the Databricks roles and databases, then a clean shutdown so a
 * clone starts without recovery. Interrupted preparation starts over.
 */
export async function prepareTemplate(
  runtime: PostgresRuntime,
  templateDir: string,
  socketDir: string,
  logFile: string,
): Promise<void> {
  if (existsSync(join(templateDir, READY_MARKER))) return;
  const partial = `${templateDir}.partial`;
  await stopCluster(partial).catch(() => {});
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  await handToPostgres(runtime, partial, 0o700);
  await initCluster(runtime, partial);
  await startCluster(runtime, { dataDir: partial, socketDir, logFile });
  try {
    await runAsSuperuser(socketDir, 'postgres', TEMPLATE_SQL);
    await runAsSuperuser(socketDir, 'databricks_postgres', PER_DATABASE_SQL);
  } finally {
    await stopCluster(partial);
  }
  await rm(join(partial, 'postmaster.opts'), { force: true });
  await writeFile(join(partial, READY_MARKER), `${new Date().toISOString()}\n`);
  await handToPostgres(runtime, join(partial, READY_MARKER));
  await rm(templateDir, { recursive: true, force: true });
  await rename(partial, templateDir);
}

async function runAsSuperuser(socketDir: string, database: string, statements: string[]): Promise<void> {
  const client = new pg.Client({ host: socketDir, port: SOCKET_PORT, user: 'postgres', database });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}
