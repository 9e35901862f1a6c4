import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import type pg from 'pg';
import { openDeltaTable } from '../../src/delta/index.js';
import { advanceDemoTable, DAILY_REVENUE_KEY } from '../../src/lakehouse/demo.js';
import { availableInstance, grantInstance, instanceSuperuser, userWithToken } from '../helpers/access.js';
import { api, eventually, type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';

/**
 * The catalog side of synced tables on one real `pier up`: registering
 * existing Postgres tables (`/api/2.0/database/tables`), the UC tables API
 * over database-backed schemas, database catalogs and standard schemas,
 * registering an instance into an ordinary schema (refused), and the
 * update statuses and history of TRIGGERED and CONTINUOUS tables.
 */

let pier: PierProcess;
let w: WorkspaceClient;
let uid: string;
let pgClient: pg.Client;
let demoLocation: string;
const UC = '/api/2.1/unity-catalog';

async function pierCli(...args: string[]) {
  return runPier([...args, '--data-dir', pier.dataDir]);
}

/** `pier database register-database-instance orders-db --catalog analytics --schema SCHEMA`. */
function register(schema: string) {
  return pierCli(
    'database',
    'register-database-instance',
    'orders-db',
    '--catalog',
    'analytics',
    '--schema',
    schema,
  );
}

before(async () => {
  pier = await startPier();
  w = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
  const demo = await pierCli('demo');
  assert.equal(demo.code, 0, demo.stderr);
  demoLocation = JSON.parse(demo.stdout).storage_location;
  uid = await availableInstance(pier, pier.adminToken, 'orders-db');
  const registered = await register('operational');
  assert.equal(registered.code, 0, registered.stderr);
  pgClient = await instanceSuperuser(pier, uid, 'databricks_postgres');
  pgClient.on('error', () => {});
  // Existing Postgres tables, made as databricks_superuser (whose members may read them).
  await pgClient.query(`
    SET ROLE databricks_superuser;
    CREATE TABLE operational.orders (id bigint PRIMARY KEY, note text NOT NULL);
    INSERT INTO operational.orders VALUES (1, 'first');
    CREATE SCHEMA gold;
    CREATE TABLE gold.ext_orders (id bigint PRIMARY KEY, amount numeric(12,2));
    RESET ROLE;
  `);
});
after(async () => {
  await pgClient?.end().catch(() => {});
  await removePier(pier);
});

/** A synced table of the demo table, in the caller's catalog: instance and database come from there. */
function createSynced(name: string, policy: 'SNAPSHOT' | 'TRIGGERED' | 'CONTINUOUS') {
  return w.database.createSyncedDatabaseTable({
    synced_table: {
      name,
      spec: {
        source_table_full_name: 'analytics.gold.daily_revenue',
        primary_key_columns: DAILY_REVENUE_KEY,
        scheduling_policy: policy,
      },
    },
  });
}

async function latest(): Promise<number> {
  return (await openDeltaTable(demoLocation)).version;
}

async function waitForVersion(name: string, version: number) {
  return eventually(
    async () => {
      const table = await w.database.getSyncedDatabaseTable({ name });
      const synced =
        table.data_synchronization_status?.last_sync?.delta_table_sync_info?.delta_commit_version;
      return synced !== undefined && Number(synced) >= version ? table : undefined;
    },
    60_000,
    `${name} at version ${version}`,
  );
}

type TableInfo = {
  name: string;
  table_type: string;
  data_source_format: string;
  pipeline_id?: string;
  columns?: { name: string; type_name: string }[];
};

async function ucTables(catalog: string, schema: string): Promise<TableInfo[]> {
  const listed = await api(
    pier,
    pier.adminToken,
    'GET',
    `${UC}/tables?catalog_name=${catalog}&schema_name=${schema}`,
  );
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  return listed.body.tables as TableInfo[];
}

test('registering an instance into an existing ordinary schema fails, names the fix and changes nothing', async () => {
  const before = await api(pier, pier.adminToken, 'GET', `${UC}/schemas/analytics.gold`);
  const refused = await register('gold');
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /Schema 'analytics\.gold' already exists as an ordinary Unity Catalog schema/);
  assert.match(refused.stderr, /Pick another --schema/);
  assert.match(refused.stderr, /pier schemas delete analytics\.gold/);
  const after = await api(pier, pier.adminToken, 'GET', `${UC}/schemas/analytics.gold`);
  assert.deepEqual(after.body, before.body);
  assert.equal(after.body.database_instance_name, undefined);
  assert.deepEqual(
    (await ucTables('analytics', 'gold')).map((t) => [t.name, t.data_source_format]),
    [['daily_revenue', 'DELTA']],
  );
  // The registered schema says what it shows; registering it again is a no-op.
  const operational = await api(pier, pier.adminToken, 'GET', `${UC}/schemas/analytics.operational`);
  assert.equal(operational.body.database_instance_name, 'orders-db');
  assert.equal(operational.body.database_name, 'databricks_postgres');
  const again = await register('operational');
  assert.equal(again.code, 0, again.stderr);
});

test('database tables: register an existing Postgres table, get it, the errors, delete keeps the table', async () => {
  const created = await w.database.createDatabaseTable({ table: { name: 'analytics.operational.orders' } });
  assert.deepEqual(created, {
    name: 'analytics.operational.orders',
    database_instance_name: 'orders-db',
    logical_database_name: 'databricks_postgres',
  });
  assert.deepEqual(await w.database.getDatabaseTable({ name: 'analytics.operational.orders' }), created);

  const post = (body: unknown, token = pier.adminToken) =>
    api(pier, token, 'POST', '/api/2.0/database/tables', body);
  const missing = await post({ name: 'analytics.operational.nope' });
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error_code, 'RESOURCE_DOES_NOT_EXIST');
  assert.match(
    String(missing.body.message),
    /Postgres table operational\.nope does not exist in database 'databricks_postgres' of instance 'orders-db'/,
  );
  const taken = await post({ name: 'analytics.operational.orders' });
  assert.equal(taken.status, 409);
  assert.equal(taken.body.error_code, 'RESOURCE_ALREADY_EXISTS');
  const twice = await post({ name: 'analytics.operational.orders_again' });
  assert.equal(twice.status, 404, 'no such Postgres table: the name is the Postgres name');
  const delta = await post({
    name: 'analytics.gold.daily_revenue',
    database_instance_name: 'orders-db',
    logical_database_name: 'databricks_postgres',
  });
  assert.equal(delta.status, 409, JSON.stringify(delta.body));
  assert.match(String(delta.body.message), /Table 'analytics\.gold\.daily_revenue' already exists/);
  const noInstance = await post({ name: 'analytics.gold.ext_orders' });
  assert.equal(noInstance.status, 400);
  assert.match(
    String(noInstance.body.message),
    /database_instance_name and logical_database_name are required/,
  );

  // Permissions: CAN_USE on the instance, then CREATE_TABLE on the schema.
  const user = 'dana@example.com';
  const { token } = await userWithToken(pier, user);
  const hidden = await post({ name: 'analytics.operational.orders2' }, token);
  assert.equal(hidden.status, 404);
  assert.match(String(hidden.body.message), /Database instance 'orders-db' does not exist/);
  await grantInstance(pier, pier.adminToken, 'orders-db', user, 'CAN_USE');
  await pgClient.query('CREATE TABLE operational.orders2 (id bigint PRIMARY KEY)');
  const noCreate = await post({ name: 'analytics.operational.orders2' }, token);
  assert.equal(noCreate.status, 403, JSON.stringify(noCreate.body));
  assert.equal(noCreate.body.error_code, 'PERMISSION_DENIED');
  assert.equal(
    (await api(pier, pier.adminToken, 'GET', '/api/2.0/database/tables/analytics.operational.orders2'))
      .status,
    404,
  );

  // A standard schema: the instance and database are named, the Postgres table is <schema>.<table>.
  const cli = await pierCli(
    'database',
    'create-database-table',
    'analytics.gold.ext_orders',
    '--database-instance-name',
    'orders-db',
    '--logical-database-name',
    'databricks_postgres',
  );
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(JSON.parse(cli.stdout).database_instance_name, 'orders-db');
  const got = await pierCli('database', 'get-database-table', 'analytics.gold.ext_orders');
  assert.equal(JSON.parse(got.stdout).logical_database_name, 'databricks_postgres');
  const gold = await ucTables('analytics', 'gold');
  assert.deepEqual(
    gold.map((t) => [t.name, t.table_type, t.data_source_format]),
    [
      ['daily_revenue', 'EXTERNAL', 'DELTA'],
      ['ext_orders', 'FOREIGN', 'POSTGRESQL_FORMAT'],
    ],
  );
  assert.deepEqual(
    gold[1].columns?.map((c) => [c.name, c.type_name]),
    [
      ['id', 'LONG'],
      ['amount', 'DECIMAL'],
    ],
  );
  const one = await api(pier, pier.adminToken, 'GET', `${UC}/tables/analytics.gold.ext_orders`);
  assert.equal(one.body.data_source_format, 'POSTGRESQL_FORMAT');

  // Delete unregisters only: the Postgres table and its rows stay.
  const deleted = await pierCli('database', 'delete-database-table', 'analytics.gold.ext_orders');
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal(
    (await api(pier, pier.adminToken, 'GET', '/api/2.0/database/tables/analytics.gold.ext_orders')).status,
    404,
  );
  assert.equal(
    (await api(pier, pier.adminToken, 'GET', `${UC}/tables/analytics.gold.ext_orders`)).status,
    404,
  );
  await w.database.deleteDatabaseTable({ name: 'analytics.operational.orders' });
  const { rows } = await pgClient.query('SELECT id::text, note FROM operational.orders');
  assert.deepEqual(rows, [{ id: '1', note: 'first' }]);
  assert.equal(
    (await pgClient.query(`SELECT to_regclass('gold.ext_orders') AS t`)).rows[0].t,
    'gold.ext_orders',
  );
});

test('CONTINUOUS: continuous_update_status, one update history row per run however many commits; UC shows the table', async () => {
  const name = 'analytics.operational.revenue_live';
  const created = await createSynced(name, 'CONTINUOUS');
  const pipelineId = created.data_synchronization_status?.pipeline_id as string;
  let table = await waitForVersion(name, await latest());
  const first = table.data_synchronization_status?.continuous_update_status;
  assert.equal(Number(first?.last_processed_commit_version), await latest());
  assert.ok(first?.timestamp);
  assert.equal(first?.initial_pipeline_sync_progress?.sync_progress_completion, 1);
  assert.ok(Number(first?.initial_pipeline_sync_progress?.synced_row_count) > 0);
  assert.equal(table.data_synchronization_status?.triggered_update_status, undefined);

  for (let i = 0; i < 3; i++) await advanceDemoTable(demoLocation);
  const version = await latest();
  table = await waitForVersion(name, version);
  const now = table.data_synchronization_status?.continuous_update_status;
  assert.equal(Number(now?.last_processed_commit_version), version);
  assert.equal(now?.initial_pipeline_sync_progress?.sync_progress_completion, 1, 'kept from the first sync');

  const history = await eventually(
    async () => {
      const { body } = await api(pier, pier.adminToken, 'GET', `/api/2.0/pipelines/${pipelineId}/updates`);
      const updates = body.updates as { state: string; cause: string; message?: string }[];
      return updates.length === 2 &&
        new RegExp(`at Delta version ${version}\\.`).test(updates[0].message ?? '')
        ? updates
        : undefined;
    },
    20_000,
    'the continuous run row',
  );
  assert.deepEqual(
    history.map((u) => [u.state, u.cause]),
    [
      ['RUNNING', 'API_CALL'],
      ['COMPLETED', 'API_CALL'],
    ],
  );
  assert.match(
    String(history[0].message),
    /(pass|passes) in this run; analytics\.operational\.revenue_live at Delta version/,
  );

  // The UC tables API: the database-backed schema is read live, the synced table carries its pipeline.
  const listed = await ucTables('analytics', 'operational');
  const live = listed.find((t) => t.name === 'revenue_live');
  assert.equal(live?.table_type, 'FOREIGN');
  assert.equal(live?.data_source_format, 'POSTGRESQL_FORMAT');
  assert.equal(live?.pipeline_id, pipelineId);
  assert.ok(
    listed.some((t) => t.name === 'orders' && !t.pipeline_id),
    'Postgres tables of the schema are listed',
  );
  const got = await api(pier, pier.adminToken, 'GET', `${UC}/tables/${name}`);
  assert.equal(got.status, 200, JSON.stringify(got.body));
  assert.equal(got.body.pipeline_id, pipelineId);
  assert.deepEqual(
    (got.body.columns as { name: string }[]).slice(0, 2).map((c) => c.name),
    ['day', 'region'],
  );

  // A database catalog over the same database lists the synced table too.
  const catalog = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/catalogs', {
    name: 'orders_live',
    database_instance_name: 'orders-db',
    database_name: 'databricks_postgres',
  });
  assert.equal(catalog.status, 200, JSON.stringify(catalog.body));
  const inCatalog = await ucTables('orders_live', 'operational');
  assert.equal(
    inCatalog.find((t) => t.name === 'revenue_live')?.pipeline_id,
    undefined,
    'another name, not the synced table',
  );
  assert.ok(inCatalog.some((t) => t.name === 'revenue_live'));
  // In a database catalog a database table takes its instance and database from the catalog.
  const inCatalogTable = await w.database.createDatabaseTable({
    table: { name: 'orders_live.operational.orders' },
  });
  assert.equal(inCatalogTable.database_instance_name, 'orders-db');
  assert.equal(inCatalogTable.logical_database_name, 'databricks_postgres');
  const otherDatabase = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/tables', {
    name: 'orders_live.operational.orders2',
    logical_database_name: 'postgres',
  });
  assert.equal(otherDatabase.status, 400);
  assert.match(String(otherDatabase.body.message), /shows database 'databricks_postgres', not 'postgres'/);
  const inside = await createSynced('orders_live.operational.revenue_copy', 'SNAPSHOT');
  await waitForVersion(inside.name, version);
  const copy = (await ucTables('orders_live', 'operational')).find((t) => t.name === 'revenue_copy');
  assert.equal(copy?.pipeline_id, inside.data_synchronization_status?.pipeline_id);
  assert.equal(copy?.data_source_format, 'POSTGRESQL_FORMAT');
});

test('TRIGGERED: triggered_update_status after each update', async () => {
  const name = 'analytics.operational.revenue_batch';
  const created = await createSynced(name, 'TRIGGERED');
  let table = await waitForVersion(name, await latest());
  let status = table.data_synchronization_status;
  assert.equal(Number(status?.triggered_update_status?.last_processed_commit_version), await latest());
  assert.equal(status?.continuous_update_status, undefined);
  const version = await advanceDemoTable(demoLocation);
  const pipelineId = created.data_synchronization_status?.pipeline_id as string;
  const started = await api(pier, pier.adminToken, 'POST', `/api/2.0/pipelines/${pipelineId}/updates`, {});
  assert.equal(started.status, 200, JSON.stringify(started.body));
  table = await waitForVersion(name, version);
  status = table.data_synchronization_status;
  assert.equal(status?.detailed_state, 'SYNCED_TABLE_ONLINE_NO_PENDING_UPDATE');
  assert.equal(Number(status?.triggered_update_status?.last_processed_commit_version), version);
  assert.ok(status?.triggered_update_status?.timestamp);
  // Tables updated in place leave room for HOT updates; a SNAPSHOT table is replaced whole.
  const { rows } = await pgClient.query(
    `SELECT relname, reloptions FROM pg_class WHERE relname IN ('revenue_batch', 'revenue_live', 'revenue_copy') ORDER BY relname`,
  );
  assert.deepEqual(
    rows.map((r) => [r.relname, r.reloptions]),
    [
      ['revenue_batch', ['fillfactor=90']],
      ['revenue_copy', ['fillfactor=100']],
      ['revenue_live', ['fillfactor=90']],
    ],
  );
});
