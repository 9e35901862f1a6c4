import assert from 'node:assert/strict';
import { cp, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { openDeltaTable } from '../../src/delta/index.js';
import { targetLayout } from '../../src/sync/columns.js';
import { collect, tableRoot } from '../delta/expected.js';
import { availableInstance, instanceSuperuser } from '../helpers/access.js';
import { api, eventually, type PierProcess, removePier, startPier, tempDataDir } from '../helpers/pier.js';
import { deltaCanonical, postgresCanonical } from './compare.js';

/**
 * Corpus tables (written by Spark and delta-rs, not by Pier) synced through
 * the API of a real `pier up`: an external location and the Delta table
 * registered in the catalog, the synced table created over HTTP. Tables
 * with a Change Data Feed start from an early version and get their later
 * commits one at a time (as a writer would add them); after each, Postgres
 * is compared with the Delta snapshot at that version, value by value.
 */

const UC = '/api/2.1/unity-catalog';
type Policy = 'SNAPSHOT' | 'TRIGGERED' | 'CONTINUOUS';
const TABLES: { table: string; key: string; policy: Policy; start?: number }[] = [
  { table: 'data-reader-primitives', key: 'as_int', policy: 'SNAPSHOT' },
  { table: 'table-with-dv-large', key: 'value', policy: 'SNAPSHOT' },
  { table: 'cdf-table', key: 'id', policy: 'TRIGGERED', start: 0 },
  { table: 'cdf-table-with-dv', key: 'value', policy: 'TRIGGERED', start: 0 },
  { table: 'cdf-column-mapping-name-mode', key: 'id', policy: 'TRIGGERED', start: 1 },
  { table: 'cdf-table-with-cdc-and-dvs', key: 'id', policy: 'CONTINUOUS', start: 0 },
];

let pier: PierProcess;
let lake: string;
let client: pg.Client;

const ucName = (table: string) => table.replaceAll('-', '_');
const logFile = (version: number, ext: string) => `${String(version).padStart(20, '0')}.${ext}`;

before(async () => {
  pier = await startPier();
  lake = join(await tempDataDir('pier-corpus-lake-'), 'lake');
  await mkdir(lake);
  const uid = await availableInstance(pier, pier.adminToken, 'corpus-db');
  const post = async (path: string, body: unknown) => {
    const response = await api(pier, pier.adminToken, 'POST', path, body);
    assert.equal(response.status, 200, `${path}: ${JSON.stringify(response.body)}`);
  };
  await post(`${UC}/external-locations`, { name: 'lake', url: `file://${lake}` });
  await post(`${UC}/catalogs`, { name: 'lake' });
  await post(`${UC}/schemas`, { name: 'corpus', catalog_name: 'lake' });
  for (const { table, start } of TABLES) {
    // A copy whose log ends at `start`: the later commits arrive one at a time.
    const location = join(lake, table);
    await cp(tableRoot(table), location, { recursive: true });
    if (start !== undefined) {
      for (const file of await readdir(join(location, '_delta_log'))) {
        if (Number(file.split('.')[0]) > start) await rm(join(location, '_delta_log', file));
      }
    }
    await post(`${UC}/tables`, {
      name: ucName(table),
      catalog_name: 'lake',
      schema_name: 'corpus',
      table_type: 'EXTERNAL',
      data_source_format: 'DELTA',
      storage_location: location,
    });
  }
  client = await instanceSuperuser(pier, uid, 'postgres');
});
after(async () => {
  await client?.end().catch(() => {});
  await removePier(pier);
});

/** Adds commit `version` of the corpus table to the copy, atomically (as a Delta writer does). */
async function addCommit(table: string, version: number): Promise<void> {
  const from = join(tableRoot(table), '_delta_log', logFile(version, 'json'));
  const staged = join(lake, table, `.incoming-${version}`);
  await cp(from, staged);
  await rename(staged, join(lake, table, '_delta_log', logFile(version, 'json')));
}

async function syncedVersion(name: string): Promise<number | undefined> {
  const { body } = await api(pier, pier.adminToken, 'GET', `/api/2.0/database/synced_tables/${name}`);
  // biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read field by field.
  const status = body.data_synchronization_status as any;
  assert.doesNotMatch(String(status?.detailed_state), /FAILED/, String(status?.message));
  const version = status?.last_sync?.delta_table_sync_info?.delta_commit_version;
  return version === undefined ? undefined : Number(version);
}

async function assertSynced(table: string, key: string, version: number): Promise<void> {
  const name = `lake.synced.${ucName(table)}`;
  await eventually(
    async () => (((await syncedVersion(name)) ?? -1) >= version ? true : undefined),
    60_000,
    `${name} at version ${version}`,
  );
  const snapshot = await openDeltaTable(tableRoot(table), { version });
  const layout = targetLayout(snapshot.schema, { primaryKey: [key] });
  const target = await targetClient();
  assert.deepEqual(
    await postgresCanonical(target, { schema: 'synced', table: ucName(table) }, layout),
    deltaCanonical(layout, await collect(snapshot.scan())),
    `${table} at version ${version}`,
  );
}

/** The target database exists once the first synced table made it. */
async function targetClient(): Promise<pg.Client> {
  if ((client as unknown as { database: string }).database !== 'databricks_postgres') {
    const uid = (await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances/corpus-db')).body
      .uid as string;
    await client.end();
    client = await instanceSuperuser(pier, uid, 'databricks_postgres');
  }
  return client;
}

for (const { table, key, policy, start } of TABLES) {
  test(`${table} (${policy}) through the API matches Delta value by value${start !== undefined ? ' after each commit' : ''}`, async () => {
    const created = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/synced_tables', {
      name: `lake.synced.${ucName(table)}`,
      database_instance_name: 'corpus-db',
      logical_database_name: 'databricks_postgres',
      spec: {
        source_table_full_name: `lake.corpus.${ucName(table)}`,
        primary_key_columns: [key],
        scheduling_policy: policy,
        create_database_objects_if_missing: true,
      },
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const pipelineId = (created.body.data_synchronization_status as { pipeline_id: string }).pipeline_id;
    const latest = (await openDeltaTable(tableRoot(table))).version;
    await assertSynced(table, key, start ?? latest);
    if (start === undefined) return;
    for (let version = start + 1; version <= latest; version++) {
      await addCommit(table, version);
      if (policy === 'TRIGGERED') {
        const update = await api(
          pier,
          pier.adminToken,
          'POST',
          `/api/2.0/pipelines/${pipelineId}/updates`,
          {},
        );
        assert.equal(update.status, 200, JSON.stringify(update.body));
      }
      await assertSynced(table, key, version);
    }
  });
}
