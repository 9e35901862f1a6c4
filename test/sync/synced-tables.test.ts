import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import type pg from 'pg';
import { openDeltaTable } from '../../src/delta/index.js';
import { appendRows, createTable } from '../../src/delta/writer.js';
import { advanceDemoTable, DAILY_REVENUE_KEY, DAILY_REVENUE_SCHEMA } from '../../src/lakehouse/demo.js';
import { targetLayout } from '../../src/sync/columns.js';
import { collect } from '../delta/expected.js';
import { availableInstance, grantInstance, instanceSuperuser, userWithToken } from '../helpers/access.js';
import { api, eventually, type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';
import { deltaCanonical, postgresCanonical } from './compare.js';

/**
 * Synced tables end to end through the real API of a real `pier up`: the
 * SDK creates them, the sync worker fills them, and Postgres is compared
 * with the Delta snapshot value by value.
 */

let pier: PierProcess;
let w: WorkspaceClient;
let uid: string;
let pgClient: pg.Client;
let demoLocation: string;
const SOURCE = 'analytics.gold.daily_revenue';

before(async () => {
  pier = await startPier();
  w = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
  const demo = await runPier(['demo', '--data-dir', pier.dataDir]);
  assert.equal(demo.code, 0, demo.stderr);
  demoLocation = JSON.parse(demo.stdout).storage_location;
  uid = await availableInstance(pier, pier.adminToken, 'orders-db');
  // The database may not exist before the first synced table makes it.
  pgClient = quiet(
    await instanceSuperuser(pier, uid, 'databricks_postgres').catch(() => instanceSuperuser(pier, uid)),
  );
});
after(async () => {
  await pgClient?.end().catch(() => {});
  await removePier(pier);
});

function syncedTable(
  name: string,
  policy: 'SNAPSHOT' | 'TRIGGERED' | 'CONTINUOUS',
  extra: Record<string, unknown> = {},
) {
  return {
    name,
    database_instance_name: 'orders-db',
    logical_database_name: 'databricks_postgres',
    spec: {
      source_table_full_name: SOURCE,
      primary_key_columns: DAILY_REVENUE_KEY,
      scheduling_policy: policy,
      create_database_objects_if_missing: true,
      ...extra,
    },
  };
}

async function waitForVersion(name: string, version: number, timeoutMs = 60_000) {
  return eventually(
    async () => {
      const table = await w.database.getSyncedDatabaseTable({ name });
      const status = table.data_synchronization_status;
      const synced = status?.last_sync?.delta_table_sync_info?.delta_commit_version;
      return synced !== undefined && Number(synced) >= version ? table : undefined;
    },
    timeoutMs,
    `${name} at version ${version}`,
  );
}

/** The test's own connection; the instance's stop ends it, which is expected. */
function quiet(client: pg.Client): pg.Client {
  client.on('error', () => {});
  return client;
}

async function targetClient(): Promise<pg.Client> {
  if ((pgClient as unknown as { database: string }).database !== 'databricks_postgres') {
    await pgClient.end();
    pgClient = quiet(await instanceSuperuser(pier, uid, 'databricks_postgres'));
  }
  return pgClient;
}

async function assertSameAsDelta(schema: string, table: string, version?: number) {
  const snapshot = await openDeltaTable(demoLocation, version === undefined ? {} : { version });
  const layout = targetLayout(snapshot.schema, { primaryKey: DAILY_REVENUE_KEY });
  const client = await targetClient();
  assert.deepEqual(
    await postgresCanonical(client, { schema, table }, layout),
    deltaCanonical(layout, await collect(snapshot.scan())),
  );
}

async function latest(): Promise<number> {
  return (await openDeltaTable(demoLocation)).version;
}

test('TRIGGERED: the first snapshot on create, then an update applies the new commit', async () => {
  const created = await w.database.createSyncedDatabaseTable({
    synced_table: syncedTable('analytics.gold.revenue_triggered', 'TRIGGERED'),
  });
  assert.equal(created.name, 'analytics.gold.revenue_triggered');
  assert.equal(created.effective_database_instance_name, 'orders-db');
  const pipelineId = created.data_synchronization_status?.pipeline_id;
  assert.ok(pipelineId);
  const first = await waitForVersion(created.name, await latest());
  assert.equal(first.data_synchronization_status?.detailed_state, 'SYNCED_TABLE_ONLINE_NO_PENDING_UPDATE');
  await assertSameAsDelta('gold', 'revenue_triggered');

  const version = await advanceDemoTable(demoLocation);
  const started = await api(pier, pier.adminToken, 'POST', `/api/2.0/pipelines/${pipelineId}/updates`, {});
  assert.equal(started.status, 200, JSON.stringify(started.body));
  assert.ok(started.body.update_id);
  await waitForVersion(created.name, version);
  await assertSameAsDelta('gold', 'revenue_triggered', version);

  const pipeline = await api(pier, pier.adminToken, 'GET', `/api/2.0/pipelines/${pipelineId}`);
  assert.equal(pipeline.body.pipeline_id, pipelineId);
  const updates = await api(pier, pier.adminToken, 'GET', `/api/2.0/pipelines/${pipelineId}/updates`);
  const states = (updates.body.updates as { state: string; update_id: string }[]).map((u) => u.state);
  assert.deepEqual(states, ['COMPLETED', 'COMPLETED']);

  // The table is the writer role's; readers go through the reader role; lineage is recorded.
  const client = await targetClient();
  const { rows } = await client.query(
    `SELECT tableowner FROM pg_tables WHERE schemaname = 'gold' AND tablename = 'revenue_triggered'`,
  );
  assert.equal(rows[0].tableowner, 'pier_sync_writer_databricks_postgres');
  const lineage = await api(
    pier,
    pier.adminToken,
    'GET',
    `/api/2.0/lineage-tracking/table-lineage?table_name=${SOURCE}`,
  );
  assert.match(JSON.stringify(lineage.body), /revenue_triggered/);
});

test('CONTINUOUS: a new Delta commit arrives without any request', async () => {
  const created = await w.database.createSyncedDatabaseTable({
    synced_table: syncedTable('analytics.gold.revenue_continuous', 'CONTINUOUS'),
  });
  await waitForVersion(created.name, await latest());
  await assertSameAsDelta('gold', 'revenue_continuous');
  const version = await advanceDemoTable(demoLocation);
  const began = Date.now();
  const table = await waitForVersion(created.name, version, 15_000);
  assert.ok(Date.now() - began < 10_000);
  assert.equal(table.data_synchronization_status?.detailed_state, 'SYNCED_TABLE_ONLINE_CONTINUOUS_UPDATE');
  await assertSameAsDelta('gold', 'revenue_continuous', version);
});

test('SNAPSHOT: each update copies the source whole; full_refresh on a triggered table re-snapshots', async () => {
  const created = await w.database.createSyncedDatabaseTable({
    synced_table: syncedTable('analytics.gold.revenue_snapshot', 'SNAPSHOT'),
  });
  await waitForVersion(created.name, await latest());
  await assertSameAsDelta('gold', 'revenue_snapshot');
  const version = await advanceDemoTable(demoLocation);
  const pipelineId = created.data_synchronization_status?.pipeline_id as string;
  await api(pier, pier.adminToken, 'POST', `/api/2.0/pipelines/${pipelineId}/updates`, {
    full_refresh: true,
  });
  await waitForVersion(created.name, version);
  await assertSameAsDelta('gold', 'revenue_snapshot', version);
  const updates = await api(pier, pier.adminToken, 'GET', `/api/2.0/pipelines/${pipelineId}/updates`);
  assert.equal((updates.body.updates as { full_refresh: boolean }[])[0].full_refresh, true);
});

test('list is paged; delete keeps the Postgres table unless purge_data', async () => {
  const page = await api(
    pier,
    pier.adminToken,
    'GET',
    '/api/2.0/database/instances/orders-db/synced_tables?page_size=2',
  );
  assert.equal((page.body.synced_tables as unknown[]).length, 2);
  assert.ok(page.body.next_page_token);
  const rest = await api(
    pier,
    pier.adminToken,
    'GET',
    `/api/2.0/database/instances/orders-db/synced_tables?page_size=2&page_token=${page.body.next_page_token}`,
  );
  assert.equal((rest.body.synced_tables as unknown[]).length, 1);
  const all: string[] = [];
  for await (const t of w.database.listSyncedDatabaseTables({ instance_name: 'orders-db', page_size: 1 }))
    all.push(t.name);
  assert.deepEqual(all, [
    'analytics.gold.revenue_continuous',
    'analytics.gold.revenue_snapshot',
    'analytics.gold.revenue_triggered',
  ]);

  await w.database.deleteSyncedDatabaseTable({ name: 'analytics.gold.revenue_snapshot' });
  const client = await targetClient();
  const kept = await client.query(`SELECT to_regclass('gold.revenue_snapshot') IS NOT NULL AS present`);
  assert.equal(kept.rows[0].present, true);
  const purged = await api(
    pier,
    pier.adminToken,
    'DELETE',
    '/api/2.0/database/synced_tables/analytics.gold.revenue_triggered?purge_data=true',
  );
  assert.equal(purged.status, 200, JSON.stringify(purged.body));
  const gone = await client.query(`SELECT to_regclass('gold.revenue_triggered') IS NOT NULL AS present`);
  assert.equal(gone.rows[0].present, false);
  const missing = await api(
    pier,
    pier.adminToken,
    'GET',
    '/api/2.0/database/synced_tables/analytics.gold.revenue_triggered',
  );
  assert.equal(missing.status, 404);
});

test('creation rules: each refusal names its cause and creates nothing', async () => {
  // A source with the Change Data Feed off.
  const noCdf = join(pier.dataDir, 'lakehouse', 'analytics', 'gold', 'no_cdf');
  await createTable(noCdf, DAILY_REVENUE_SCHEMA);
  const commit = join(noCdf, '_delta_log', '00000000000000000000.json');
  await writeFile(
    commit,
    (await readFile(commit, 'utf8')).replace(
      '"delta.enableChangeDataFeed":"true"',
      '"delta.enableChangeDataFeed":"false"',
    ),
  );
  const registered = await api(pier, pier.adminToken, 'POST', '/api/2.1/unity-catalog/tables', {
    name: 'no_cdf',
    catalog_name: 'analytics',
    schema_name: 'gold',
    table_type: 'EXTERNAL',
    data_source_format: 'DELTA',
    storage_location: noCdf,
  });
  assert.equal(registered.status, 200, JSON.stringify(registered.body));

  const refused = async (body: Record<string, unknown>, status: number, pattern: RegExp) => {
    const response = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/synced_tables', body);
    assert.equal(response.status, status, JSON.stringify(response.body));
    assert.match(String(response.body.message), pattern);
  };
  const base = syncedTable('analytics.gold.refused', 'TRIGGERED');
  await refused({ ...base, spec: { ...base.spec, primary_key_columns: [] } }, 400, /needs a primary key/);
  await refused(
    { ...base, spec: { ...base.spec, primary_key_columns: ['nope'] } },
    400,
    /'nope' is not a column/,
  );
  await refused(
    { ...base, spec: { ...base.spec, source_table_full_name: 'analytics.gold.no_cdf' } },
    400,
    /delta\.enableChangeDataFeed/,
  );
  await refused(
    { ...base, spec: { ...base.spec, scheduling_policy: 'HOURLY' as never } },
    400,
    /scheduling_policy/,
  );
  await refused(
    { name: base.name, spec: base.spec },
    400,
    /database_instance_name and logical_database_name are required/,
  );
  await refused(
    { ...base, spec: { ...base.spec, source_table_full_name: 'analytics.gold.nothing' } },
    404,
    /does not exist/,
  );
  // SNAPSHOT does not need the Change Data Feed.
  const snapshotOnly = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/synced_tables', {
    ...base,
    name: 'analytics.gold.no_cdf_copy',
    spec: { ...base.spec, scheduling_policy: 'SNAPSHOT', source_table_full_name: 'analytics.gold.no_cdf' },
  });
  assert.equal(snapshotOnly.status, 200, JSON.stringify(snapshotOnly.body));
  const missing = await api(
    pier,
    pier.adminToken,
    'GET',
    '/api/2.0/database/synced_tables/analytics.gold.refused',
  );
  assert.equal(missing.status, 404);
});

test('permissions: CAN_USE on the instance and SELECT on the source', async () => {
  const user = await userWithToken(pier, 'sync-user@example.com');
  const body = syncedTable('analytics.gold.by_user', 'SNAPSHOT');
  const noInstance = await api(pier, user.token, 'POST', '/api/2.0/database/synced_tables', body);
  assert.equal(noInstance.status, 404, JSON.stringify(noInstance.body));
  await grantInstance(pier, pier.adminToken, 'orders-db', 'sync-user@example.com', 'CAN_USE');
  const noSelect = await api(pier, user.token, 'POST', '/api/2.0/database/synced_tables', body);
  assert.equal(noSelect.status, 403, JSON.stringify(noSelect.body));
  for (const [securable, name, privilege] of [
    ['catalog', 'analytics', 'USE_CATALOG'],
    ['schema', 'analytics.gold', 'USE_SCHEMA'],
    ['table', SOURCE, 'SELECT'],
  ]) {
    const granted = await api(
      pier,
      pier.adminToken,
      'PATCH',
      `/api/2.1/unity-catalog/permissions/${securable}/${name}`,
      {
        changes: [{ principal: 'sync-user@example.com', add: [privilege] }],
      },
    );
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
  }
  const allowed = await api(pier, user.token, 'POST', '/api/2.0/database/synced_tables', body);
  assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
});

test('limits: at most 20 synced tables per source; VARIANT columns are refused', async () => {
  // analytics.gold.no_cdf has one synced table (no_cdf_copy): 19 more fit, the 21st does not.
  for (let i = 1; i < 20; i++) {
    const made = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/synced_tables', {
      ...syncedTable(`analytics.gold.copy_${i}`, 'SNAPSHOT'),
      spec: { ...syncedTable('x', 'SNAPSHOT').spec, source_table_full_name: 'analytics.gold.no_cdf' },
    });
    assert.equal(made.status, 200, JSON.stringify(made.body));
  }
  const over = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/synced_tables', {
    ...syncedTable('analytics.gold.copy_21', 'SNAPSHOT'),
    spec: { ...syncedTable('x', 'SNAPSHOT').spec, source_table_full_name: 'analytics.gold.no_cdf' },
  });
  assert.equal(over.status, 429, JSON.stringify(over.body));
  assert.match(String(over.body.message), /already has 20 synced tables/);
  for (let i = 1; i < 20; i++)
    await w.database.deleteSyncedDatabaseTable({ name: `analytics.gold.copy_${i}` });
});

test('a duplicate key fails the pass with PRIMARY_KEY_CONSTRAINT_VIOLATION and is retried', async () => {
  const created = await w.database.createSyncedDatabaseTable({
    synced_table: syncedTable('analytics.gold.by_region', 'TRIGGERED', { primary_key_columns: ['region'] }),
  });
  const failed = await eventually(
    async () => {
      const table = await w.database.getSyncedDatabaseTable({ name: created.name });
      return table.data_synchronization_status?.detailed_state === 'SYNCED_TABLE_OFFLINE_FAILED'
        ? table
        : undefined;
    },
    60_000,
    'the failed state',
  );
  assert.match(String(failed.data_synchronization_status?.message), /PRIMARY_KEY_CONSTRAINT_VIOLATION/);
  assert.ok(failed.data_synchronization_status?.failed_status?.timestamp);
  const pipelineId = failed.data_synchronization_status?.pipeline_id as string;
  // The table's status is written first, the update's end just after it.
  const history = await eventually(
    async () => {
      const { body } = await api(pier, pier.adminToken, 'GET', `/api/2.0/pipelines/${pipelineId}/updates`);
      const updates = body.updates as { state: string; cause: string }[];
      return updates[updates.length - 1].state === 'FAILED' ? updates : undefined;
    },
    30_000,
    'the failed update',
  );
  assert.ok(history.some((u) => u.cause === 'RETRY_ON_FAILURE'));
  const pipeline = await api(pier, pier.adminToken, 'GET', `/api/2.0/pipelines/${pipelineId}`);
  assert.equal(pipeline.body.state, 'FAILED');
  await w.database.deleteSyncedDatabaseTable({ name: created.name });
});

test('PATCH changes the scheduling policy (plain HTTP: the SDK sends no body); the Change Data Feed rule applies again', async () => {
  const patch = (name: string, mask: string | undefined, body: unknown) =>
    api(
      pier,
      pier.adminToken,
      'PATCH',
      `/api/2.0/database/synced_tables/${name}${mask ? `?update_mask=${mask}` : ''}`,
      body,
    );
  const noCdf = await patch('analytics.gold.no_cdf_copy', 'spec.scheduling_policy', {
    spec: { scheduling_policy: 'TRIGGERED' },
  });
  assert.equal(noCdf.status, 400, JSON.stringify(noCdf.body));
  assert.match(String(noCdf.body.message), /delta\.enableChangeDataFeed/);
  const unchanged = await w.database.getSyncedDatabaseTable({ name: 'analytics.gold.no_cdf_copy' });
  assert.equal(unchanged.spec?.scheduling_policy, 'SNAPSHOT');
  const key = await patch('analytics.gold.by_user', 'spec.primary_key_columns', {
    spec: { primary_key_columns: ['day'] },
  });
  assert.equal(key.status, 400);
  assert.match(String(key.body.message), /cannot be changed/);
  const noMask = await patch('analytics.gold.by_user', undefined, {
    spec: { scheduling_policy: 'TRIGGERED' },
  });
  assert.equal(noMask.status, 400);
  const version = await advanceDemoTable(demoLocation);
  const changed = await patch('analytics.gold.by_user', 'spec.scheduling_policy', {
    spec: { scheduling_policy: 'TRIGGERED' },
  });
  assert.equal(changed.status, 200, JSON.stringify(changed.body));
  assert.equal((changed.body.spec as { scheduling_policy: string }).scheduling_policy, 'TRIGGERED');
  await waitForVersion('analytics.gold.by_user', version);
  await assertSameAsDelta('gold', 'by_user', version);
});

test('inside a database catalog the instance and database come from the catalog', async () => {
  const catalog = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/catalogs', {
    name: 'orders_pg',
    database_instance_name: 'orders-db',
    database_name: 'databricks_postgres',
  });
  assert.equal(catalog.status, 200, JSON.stringify(catalog.body));
  const spec = syncedTable('x', 'TRIGGERED').spec;
  const wrong = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/synced_tables', {
    name: 'orders_pg.public.revenue_in_catalog',
    logical_database_name: 'elsewhere',
    spec,
  });
  assert.equal(wrong.status, 400, JSON.stringify(wrong.body));
  assert.match(String(wrong.body.message), /shows database 'databricks_postgres', not 'elsewhere'/);
  const created = await w.database.createSyncedDatabaseTable({
    synced_table: {
      name: 'orders_pg.public.revenue_in_catalog',
      spec: { ...spec, scheduling_policy: 'TRIGGERED' },
    },
  });
  assert.equal(created.database_instance_name, 'orders-db');
  assert.equal(created.logical_database_name, 'databricks_postgres');
  await waitForVersion(created.name, await latest());
  await assertSameAsDelta('public', 'revenue_in_catalog');
});

test('rows with a null primary key are skipped and counted in the status', async () => {
  const location = join(pier.dataDir, 'lakehouse', 'analytics', 'gold', 'with_nulls');
  await createTable(location, {
    type: 'struct',
    fields: [
      { name: 'id', type: { type: 'long' }, nullable: true, metadata: {} },
      { name: 'note', type: { type: 'string' }, nullable: true, metadata: {} },
    ],
  });
  await appendRows(location, [
    { id: 1n, note: 'one' },
    { id: null, note: 'no key' },
    { id: 2n, note: 'two' },
    { id: null, note: 'no key either' },
  ]);
  const registered = await api(pier, pier.adminToken, 'POST', '/api/2.1/unity-catalog/tables', {
    name: 'with_nulls',
    catalog_name: 'analytics',
    schema_name: 'gold',
    table_type: 'EXTERNAL',
    data_source_format: 'DELTA',
    storage_location: location,
  });
  assert.equal(registered.status, 200, JSON.stringify(registered.body));
  const created = await w.database.createSyncedDatabaseTable({
    synced_table: {
      ...syncedTable('analytics.gold.with_nulls_synced', 'SNAPSHOT'),
      spec: {
        source_table_full_name: 'analytics.gold.with_nulls',
        primary_key_columns: ['id'],
        scheduling_policy: 'SNAPSHOT',
      },
    },
  });
  const table = await waitForVersion(created.name, 1);
  assert.match(
    String(table.data_synchronization_status?.message),
    /2 source rows with a null primary key were skipped/,
  );
  const client = await targetClient();
  const { rows } = await client.query('SELECT id::text, note FROM gold.with_nulls_synced ORDER BY id');
  assert.deepEqual(rows, [
    { id: '1', note: 'one' },
    { id: '2', note: 'two' },
  ]);
});

test('a stopped instance fails the continuous table, which heals by itself once it is started', async () => {
  const name = 'analytics.gold.revenue_continuous';
  const stop = await api(
    pier,
    pier.adminToken,
    'PATCH',
    '/api/2.0/database/instances/orders-db?update_mask=stopped',
    {
      stopped: true,
    },
  );
  assert.equal(stop.status, 200, JSON.stringify(stop.body));
  await eventually(
    async () => {
      const { body } = await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances/orders-db');
      return body.state === 'STOPPED' ? true : undefined;
    },
    60_000,
    'STOPPED',
  );
  await pgClient.end().catch(() => {});
  const version = await advanceDemoTable(demoLocation);
  let seen: unknown;
  const failed = await eventually(
    async () => {
      const table = await w.database.getSyncedDatabaseTable({ name });
      seen = table.data_synchronization_status;
      // A pass while the instance was stopping says UPDATING; the retry after it says STOPPED.
      const status = table.data_synchronization_status;
      return status?.detailed_state === 'SYNCED_TABLE_ONLINE_PIPELINE_FAILED' &&
        /is STOPPED/.test(status.message ?? '')
        ? table
        : undefined;
    },
    60_000,
    'the failed state',
  ).catch((error) => {
    throw new Error(`${(error as Error).message}; last status ${JSON.stringify(seen)}`);
  });
  assert.match(String(failed.data_synchronization_status?.message), /is STOPPED/);
  const start = await api(
    pier,
    pier.adminToken,
    'PATCH',
    '/api/2.0/database/instances/orders-db?update_mask=stopped',
    {
      stopped: false,
    },
  );
  assert.equal(start.status, 200, JSON.stringify(start.body));
  const healed = await waitForVersion(name, version, 120_000);
  assert.equal(healed.data_synchronization_status?.detailed_state, 'SYNCED_TABLE_ONLINE_CONTINUOUS_UPDATE');
  pgClient = quiet(await instanceSuperuser(pier, uid, 'databricks_postgres'));
  await assertSameAsDelta('gold', 'revenue_continuous', version);
});
