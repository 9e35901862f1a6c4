import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import pg from 'pg';
import { addTableLineage } from '../../src/catalog/lineage.js';
import { Store } from '../../src/store/store.js';
import { api, eventually, type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';
import { createUser } from './users.js';

const corpus = (name: string) =>
  fileURLToPath(new URL(`../../../test/fixtures/delta-corpus/${name}`, import.meta.url));

let pier: PierProcess;
let w: WorkspaceClient;
let uid: string;

/** The instance's Postgres as its superuser, over its private socket. */
function superuser(database: string): pg.Client {
  return new pg.Client({ host: join(pier.dataDir, 'run', uid), port: 5432, user: 'postgres', database });
}

/** The control-plane store of this Pier, as `pier up` opened it. */
function store(): Store {
  const socket = join(pier.dataDir, 'run', 'store');
  return new Store(`postgresql://postgres@localhost:5432/pier?host=${encodeURIComponent(socket)}`);
}

const cliEnv = () => ({
  DATABRICKS_HOST: pier.apiUrl,
  DATABRICKS_TOKEN: pier.adminToken,
  DATABRICKS_CONFIG_FILE: '/nonexistent',
});

before(async () => {
  pier = await startPier();
  w = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
  await w.database.createDatabaseInstance({ database_instance: { name: 'orders-db', capacity: 'CU_1' } });
  const instance = await eventually(
    async () => {
      const found = await w.database.getDatabaseInstance({ name: 'orders-db' });
      return found.state === 'AVAILABLE' ? found : undefined;
    },
    60_000,
    'orders-db to be AVAILABLE',
  );
  uid = instance.uid!;
});
after(async () => removePier(pier));

test('a database catalog shows the Postgres database live through Unity Catalog', async () => {
  const created = await w.database.createDatabaseCatalog({
    catalog: {
      name: 'orders',
      database_instance_name: 'orders-db',
      database_name: 'orders_app',
      create_database_if_not_exists: true,
    },
  });
  assert.equal(created.name, 'orders');
  assert.equal(created.database_instance_name, 'orders-db');
  assert.equal(created.database_name, 'orders_app');
  assert.match(created.uid ?? '', /^[0-9a-f-]{36}$/);

  const client = superuser('orders_app');
  await client.connect();
  try {
    await client.query('CREATE SCHEMA shop');
    await client.query(`CREATE TABLE shop.orders (
      id bigint PRIMARY KEY, customer text NOT NULL, amount numeric(12,2), placed_at timestamptz,
      paid boolean, tags text[], day date, local_ts timestamp, qty integer)`);
    await client.query('CREATE VIEW shop.big_orders AS SELECT * FROM shop.orders WHERE amount > 100');
  } finally {
    await client.end();
  }

  const catalog = await w.catalogs.get({ name: 'orders' });
  assert.equal(catalog.catalog_type, 'MANAGED_ONLINE_CATALOG');

  const schemas = [];
  for await (const schema of w.schemas.list({ catalog_name: 'orders' })) schemas.push(schema.name);
  assert.deepEqual(schemas, ['public', 'shop']);

  const tables = [];
  for await (const table of w.tables.list({ catalog_name: 'orders', schema_name: 'shop' }))
    tables.push(table);
  assert.deepEqual(
    tables.map((t) => [t.full_name, t.table_type, t.data_source_format]),
    [
      ['orders.shop.big_orders', 'VIEW', 'POSTGRESQL_FORMAT'],
      ['orders.shop.orders', 'FOREIGN', 'POSTGRESQL_FORMAT'],
    ],
  );

  const orders = await w.tables.get({ full_name: 'orders.shop.orders' });
  assert.deepEqual(
    orders.columns?.map((c) => [c.name, c.type_name, c.type_text, c.position, c.nullable]),
    [
      ['id', 'LONG', 'bigint', 0, false],
      ['customer', 'STRING', 'string', 1, false],
      ['amount', 'DECIMAL', 'decimal(12,2)', 2, true],
      ['placed_at', 'TIMESTAMP', 'timestamp', 3, true],
      ['paid', 'BOOLEAN', 'boolean', 4, true],
      ['tags', 'ARRAY', 'array<string>', 5, true],
      ['day', 'DATE', 'date', 6, true],
      ['local_ts', 'TIMESTAMP_NTZ', 'timestamp_ntz', 7, true],
      ['qty', 'INT', 'int', 8, true],
    ],
  );
  assert.deepEqual(JSON.parse(orders.columns![2].type_json!), {
    name: 'amount',
    type: 'decimal(12,2)',
    nullable: true,
    metadata: {},
  });

  // A schema created through UC is created in Postgres.
  const schema = await w.schemas.create({ name: 'reporting', catalog_name: 'orders' });
  assert.equal(schema.full_name, 'orders.reporting');
  const check = superuser('orders_app');
  await check.connect();
  const { rowCount } = await check.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'reporting'`);
  await check.end();
  assert.equal(rowCount, 1);

  const listed = await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances/orders-db/catalogs');
  assert.deepEqual(
    (listed.body.database_catalogs as { name: string }[]).map((c) => c.name),
    ['orders'],
  );
});

test('a missing database is a clear error, and nothing is recorded', async () => {
  const missing = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/catalogs', {
    name: 'ghost',
    database_instance_name: 'orders-db',
    database_name: 'no_such_db',
  });
  assert.equal(missing.status, 400);
  assert.equal(missing.body.error_code, 'INVALID_PARAMETER_VALUE');
  assert.match(String(missing.body.message), /create_database_if_not_exists/);
  assert.equal(
    (await api(pier, pier.adminToken, 'GET', '/api/2.1/unity-catalog/catalogs/ghost')).status,
    404,
  );

  const noInstance = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/catalogs', {
    name: 'ghost',
    database_instance_name: 'no-such-instance',
    database_name: 'databricks_postgres',
  });
  assert.equal(noInstance.status, 404);

  const taken = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/catalogs', {
    name: 'orders',
    database_instance_name: 'orders-db',
    database_name: 'databricks_postgres',
  });
  assert.equal(taken.status, 409);
  assert.equal(taken.body.error_code, 'RESOURCE_ALREADY_EXISTS');
});

const setInstancePermission = (userName: string, level: string) =>
  api(pier, pier.adminToken, 'PATCH', '/api/2.0/permissions/database-instances/orders-db', {
    access_control_list: [{ user_name: userName, permission_level: level }],
  });

test('CAN_USE on an instance does not let a user make (or own) a catalog over any of its databases', async () => {
  const userName = 'dev@example.com';
  const token = await createUser(pier, userName);
  const granted = await setInstancePermission(userName, 'CAN_USE');
  assert.equal(granted.status, 200, JSON.stringify(granted.body));

  for (const database_name of ['postgres', 'databricks_postgres', 'orders_app']) {
    const denied = await api(pier, token, 'POST', '/api/2.0/database/catalogs', {
      name: 'devcat',
      database_instance_name: 'orders-db',
      database_name,
      create_database_if_not_exists: true,
    });
    assert.equal(denied.status, 403, database_name);
    assert.equal(denied.body.error_code, 'PERMISSION_DENIED');
    assert.match(String(denied.body.message), /does not have CREATE CATALOG on Metastore/);
  }
  assert.equal(
    (await api(pier, pier.adminToken, 'GET', '/api/2.1/unity-catalog/catalogs/devcat')).status,
    404,
    'nothing was recorded',
  );

  // Not even an admin makes a catalog of a template database.
  for (const database_name of ['template0', 'template1']) {
    const template = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/catalogs', {
      name: 'tpl',
      database_instance_name: 'orders-db',
      database_name,
    });
    assert.equal(template.status, 400, database_name);
    assert.equal(template.body.error_code, 'INVALID_PARAMETER_VALUE');
    assert.match(String(template.body.message), /is a template database/);
  }
  assert.equal((await api(pier, pier.adminToken, 'GET', '/api/2.1/unity-catalog/catalogs/tpl')).status, 404);
});

test('a database catalog is read as the caller’s own Postgres role, while they hold CAN_USE', async () => {
  const userName = 'analyst@example.com';
  const token = await createUser(pier, userName);
  const tables = () =>
    api(pier, token, 'GET', '/api/2.1/unity-catalog/tables?catalog_name=orders&schema_name=shop');
  // Unity Catalog lets her in: USE_CATALOG and USE_SCHEMA and SELECT on the whole catalog.
  const ucGrant = await api(
    pier,
    pier.adminToken,
    'PATCH',
    '/api/2.1/unity-catalog/permissions/catalog/orders',
    {
      changes: [{ principal: userName, add: ['USE_CATALOG', 'USE_SCHEMA', 'SELECT'] }],
    },
  );
  assert.equal(ucGrant.status, 200, JSON.stringify(ucGrant.body));

  const noInstance = await tables();
  assert.equal(noInstance.status, 403);
  assert.equal(noInstance.body.error_code, 'PERMISSION_DENIED');
  assert.match(String(noInstance.body.message), /does not have CAN_USE on database instance 'orders-db'/);

  await setInstancePermission(userName, 'CAN_USE');
  const noRole = await tables();
  assert.equal(noRole.status, 403);
  assert.equal(noRole.body.error_code, 'PERMISSION_DENIED');
  assert.match(String(noRole.body.message), /has no Postgres login role in database instance 'orders-db'/);
  assert.match(String(noRole.body.message), /pier database create-database-instance-role orders-db/);

  // She creates her own role, as the message says: a plain role with no privileges in Postgres.
  const role = await api(pier, token, 'POST', '/api/2.0/database/instances/orders-db/roles', {
    name: userName,
    identity_type: 'USER',
  });
  assert.equal(role.status, 200, JSON.stringify(role.body));
  const schemas = await api(pier, token, 'GET', '/api/2.1/unity-catalog/schemas?catalog_name=orders');
  assert.equal(schemas.status, 200, JSON.stringify(schemas.body));
  assert.deepEqual(
    (schemas.body.schemas as { name: string }[]).map((s) => s.name),
    ['public'],
    'shop and reporting are not hers to use in Postgres',
  );
  const hidden = await tables();
  assert.equal(hidden.status, 404);
  assert.equal(
    (await api(pier, token, 'GET', '/api/2.1/unity-catalog/tables/orders.shop.orders')).status,
    404,
  );

  // Postgres privileges open exactly what they grant: the table, not the view beside it.
  const client = superuser('orders_app');
  await client.connect();
  try {
    await client.query(`GRANT USAGE ON SCHEMA shop TO "${userName}"`);
    await client.query(`GRANT SELECT (id, amount) ON shop.orders TO "${userName}"`);
  } finally {
    await client.end();
  }
  const visible = await tables();
  assert.equal(visible.status, 200, JSON.stringify(visible.body));
  const [orders, ...others] = visible.body.tables as { full_name: string; columns: { name: string }[] }[];
  assert.equal(orders.full_name, 'orders.shop.orders');
  assert.deepEqual(others, [], 'the view stays hidden');
  assert.deepEqual(
    orders.columns.map((c) => c.name),
    ['id', 'amount'],
    'only the columns she may read',
  );

  // A role that is (somehow) a superuser is never read as.
  const su = superuser('orders_app');
  await su.connect();
  await su.query(`ALTER ROLE "${userName}" SUPERUSER`);
  const asSuperuser = await tables();
  await su.query(`ALTER ROLE "${userName}" NOSUPERUSER`);
  await su.end();
  assert.equal(asSuperuser.status, 403);
  assert.match(String(asSuperuser.body.message), /is a superuser/);

  // Access ends with the instance permission.
  const revoked = await api(
    pier,
    pier.adminToken,
    'PUT',
    '/api/2.0/permissions/database-instances/orders-db',
    {
      access_control_list: [],
    },
  );
  assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
  const after = await tables();
  assert.equal(after.status, 403);
  assert.match(String(after.body.message), /does not have CAN_USE on database instance 'orders-db'/);
});

test('pier database register-database-instance creates the catalog and schema as needed', async () => {
  const first = await runPier(
    ['database', 'register-database-instance', 'orders-db', '--catalog', 'ops', '--schema', 'operational'],
    cliEnv(),
  );
  assert.equal(first.code, 0, first.stderr);
  const result = JSON.parse(first.stdout) as {
    database_catalog: Record<string, unknown>;
    schema: Record<string, unknown>;
  };
  assert.equal(result.database_catalog.database_instance_name, 'orders-db');
  assert.equal(result.database_catalog.database_name, 'databricks_postgres');
  assert.equal(result.schema.full_name, 'ops.operational');

  // Running it again changes nothing and succeeds.
  const again = await runPier(
    ['database', 'register-database-instance', 'orders-db', '--catalog', 'ops', '--schema', 'operational'],
    cliEnv(),
  );
  assert.equal(again.code, 0, again.stderr);

  const got = await runPier(['database', 'get-database-catalog', 'ops'], cliEnv());
  assert.equal(JSON.parse(got.stdout).name, 'ops');
  const schemas = await runPier(['schemas', 'list', 'ops'], cliEnv());
  assert.ok((JSON.parse(schemas.stdout) as { name: string }[]).some((s) => s.name === 'operational'));

  const deleted = await runPier(['database', 'delete-database-catalog', 'ops'], cliEnv());
  assert.equal(deleted.code, 0, deleted.stderr);
  const gone = await runPier(['database', 'get-database-catalog', 'ops'], cliEnv());
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /RESOURCE_DOES_NOT_EXIST/);
});

test('lineage edges added by addTableLineage appear on both tables', async () => {
  await w.externalLocations.create({
    name: 'corpus',
    url: pathToFileURL(corpus('')).href,
    credential_name: 'none needed',
  });
  await w.catalogs.create({ name: 'analytics' });
  await w.schemas.create({ name: 'gold', catalog_name: 'analytics' });
  await w.tables.create({
    name: 'daily_revenue',
    catalog_name: 'analytics',
    schema_name: 'gold',
    table_type: 'EXTERNAL',
    data_source_format: 'DELTA',
    storage_location: corpus('basic_partitioned'),
  });
  const db = store();
  try {
    await db.transaction((tx) =>
      addTableLineage(tx, { source: 'analytics.gold.daily_revenue', target: 'orders.shop.orders' }),
    );
  } finally {
    await db.close();
  }

  const down = await api(
    pier,
    pier.adminToken,
    'GET',
    '/api/2.0/lineage-tracking/table-lineage?table_name=analytics.gold.daily_revenue',
  );
  assert.equal(down.status, 200, JSON.stringify(down.body));
  assert.deepEqual(down.body.upstreams, []);
  const [edge] = down.body.downstreams as { tableInfo: Record<string, unknown> }[];
  assert.equal(edge.tableInfo.name, 'orders');
  assert.equal(edge.tableInfo.catalog_name, 'orders');
  assert.equal(edge.tableInfo.schema_name, 'shop');
  assert.equal(edge.tableInfo.table_type, 'TABLE');
  assert.match(String(edge.tableInfo.lineage_timestamp), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);

  const up = await api(
    pier,
    pier.adminToken,
    'GET',
    '/api/2.0/lineage-tracking/table-lineage?table_name=orders.shop.orders',
  );
  assert.deepEqual(
    (up.body.upstreams as { tableInfo: { name: string } }[]).map((u) => u.tableInfo.name),
    ['daily_revenue'],
  );

  const bad = await api(
    pier,
    pier.adminToken,
    'GET',
    '/api/2.0/lineage-tracking/table-lineage?table_name=just_one',
  );
  assert.equal(bad.status, 400);
});
