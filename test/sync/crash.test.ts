import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { type DeltaRow, openDeltaTable, type StructType } from '../../src/delta/index.js';
import { appendRows, createTable, mergeRows } from '../../src/delta/writer.js';
import { targetLayout } from '../../src/sync/columns.js';
import { collect } from '../delta/expected.js';
import { availableInstance, instanceSuperuser } from '../helpers/access.js';
import { api, eventually, type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';
import { deltaCanonical, postgresCanonical } from './compare.js';

/**
 * kill -9 of Pier while the sync worker copies a snapshot, and while it
 * applies an incremental batch: the restarted Pier takes the pipeline back
 * and the Postgres table ends exactly as the Delta table, with no row twice
 * and none missing.
 */

const SCHEMA: StructType = {
  type: 'struct',
  fields: [
    { name: 'id', type: { type: 'long' }, nullable: false, metadata: {} },
    { name: 'label', type: { type: 'string' }, nullable: true, metadata: {} },
    { name: 'amount', type: { type: 'decimal', precision: 18, scale: 4 }, nullable: true, metadata: {} },
  ],
};
const ROWS = 400_000;
const NAME = 'analytics.gold.big_synced';

let pier: PierProcess;
let uid: string;
let location: string;

function row(id: number, round: number): DeltaRow {
  return {
    id: BigInt(id),
    label: `row ${id} round ${round}`,
    amount: `${id}.${String(round).padStart(4, '0')}`,
  };
}

before(async () => {
  pier = await startPier();
  const demo = await runPier(['demo', '--data-dir', pier.dataDir]);
  assert.equal(demo.code, 0, demo.stderr);
  location = join(pier.dataDir, 'lakehouse', 'analytics', 'gold', 'big');
  await createTable(location, SCHEMA);
  await appendRows(
    location,
    Array.from({ length: ROWS }, (_, i) => row(i, 0)),
    { rowGroupSize: 20_000, rowsPerFile: 100_000 },
  );
  const registered = await api(pier, pier.adminToken, 'POST', '/api/2.1/unity-catalog/tables', {
    name: 'big',
    catalog_name: 'analytics',
    schema_name: 'gold',
    table_type: 'EXTERNAL',
    data_source_format: 'DELTA',
    storage_location: location,
  });
  assert.equal(registered.status, 200, JSON.stringify(registered.body));
  uid = await availableInstance(pier, pier.adminToken, 'crash-db');
});
after(async () => removePier(pier));

// biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read field by field.
async function table(): Promise<Record<string, any>> {
  const got = await api(pier, pier.adminToken, 'GET', `/api/2.0/database/synced_tables/${NAME}`);
  return got.body;
}

async function restart(): Promise<void> {
  await pier.kill();
  pier = await startPier({ dataDir: pier.dataDir });
}

async function assertExact(version: number): Promise<void> {
  await eventually(
    async () => {
      const synced = (await table()).data_synchronization_status?.last_sync?.delta_table_sync_info;
      return synced && Number(synced.delta_commit_version) >= version ? true : undefined;
    },
    180_000,
    `version ${version}`,
  );
  const snapshot = await openDeltaTable(location, { version });
  const layout = targetLayout(snapshot.schema, { primaryKey: ['id'] });
  const client: pg.Client = await instanceSuperuser(pier, uid, 'databricks_postgres');
  try {
    const rows = await postgresCanonical(client, { schema: 'gold', table: 'big_synced' }, layout);
    const expected = deltaCanonical(layout, await collect(snapshot.scan()));
    assert.equal(rows.length, expected.length);
    assert.deepEqual(rows, expected);
  } finally {
    await client.end();
  }
}

test('kill -9 during the initial snapshot: the restarted Pier copies it again, exactly', async () => {
  const created = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/synced_tables', {
    name: NAME,
    database_instance_name: 'crash-db',
    logical_database_name: 'databricks_postgres',
    spec: {
      source_table_full_name: 'analytics.gold.big',
      primary_key_columns: ['id'],
      scheduling_policy: 'TRIGGERED',
      create_database_objects_if_missing: true,
    },
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  // Wait until rows are on their way, then crash.
  await eventually(
    async () => {
      const progress = (await table()).data_synchronization_status?.provisioning_status
        ?.initial_pipeline_sync_progress;
      return progress?.synced_row_count > 0 ? true : undefined;
    },
    120_000,
    'snapshot progress',
  );
  const during = (await table()).data_synchronization_status;
  assert.equal(during.detailed_state, 'SYNCED_TABLE_PROVISIONING_INITIAL_SNAPSHOT');
  assert.equal(during.provisioning_status.initial_pipeline_sync_progress.total_row_count, ROWS);
  await restart();
  await assertExact((await openDeltaTable(location)).version);
});

test('kill -9 during an incremental batch: no change lost, none applied twice', async () => {
  const updates = Array.from({ length: 150_000 }, (_, i) => row(i * 2, 1));
  const inserts = Array.from({ length: 1000 }, (_, i) => row(ROWS + i, 1));
  const deletes = Array.from({ length: 1000 }, (_, i) => ({ id: BigInt(i * 2 + 1) }));
  const version = await mergeRows(location, { key: ['id'], upserts: [...updates, ...inserts], deletes });
  const pipelineId = (await table()).data_synchronization_status.pipeline_id;
  const started = await api(pier, pier.adminToken, 'POST', `/api/2.0/pipelines/${pipelineId}/updates`, {});
  assert.equal(started.status, 200, JSON.stringify(started.body));
  await eventually(
    async () => {
      const { body } = await api(pier, pier.adminToken, 'GET', `/api/2.0/pipelines/${pipelineId}/updates`);
      const update = (body.updates as { update_id: string; state: string }[]).find(
        (u) => u.update_id === started.body.update_id,
      );
      return update && update.state !== 'QUEUED' ? true : undefined;
    },
    60_000,
    'the update running',
  );
  await restart();
  await assertExact(version);
});
