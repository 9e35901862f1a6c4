import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import type { DatabaseInstance } from '@databricks/sdk-experimental/dist/apis/database/model.js';
import pg from 'pg';
import { eventually, type PierProcess, removePier, startPier } from '../helpers/pier.js';

let pier: PierProcess;
let w: WorkspaceClient;

before(async () => {
  pier = await startPier();
  w = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
});
after(async () => removePier(pier));

/** The instance's Postgres, reached the way the engine does: its private unix socket. */
function superuserClient(uid: string): pg.Client {
  return new pg.Client({
    host: join(pier.dataDir, 'run', uid),
    port: 5432,
    user: 'postgres',
    database: 'postgres',
  });
}

/**
 * PATCH through plain HTTP: the JS SDK (through 0.17) sends no body with
 * PATCH requests, so its updateDatabaseInstance cannot carry the new values.
 */
async function patchInstance(
  name: string,
  updateMask: string,
  body: Record<string, unknown>,
): Promise<DatabaseInstance> {
  const response = await fetch(
    `${pier.apiUrl}/api/2.0/database/instances/${name}?update_mask=${updateMask}`,
    {
      method: 'PATCH',
      headers: { authorization: `Bearer ${pier.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name, ...body }),
    },
  );
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as DatabaseInstance;
}

async function waitForState(name: string, state: string): Promise<DatabaseInstance> {
  return eventually(
    async () => {
      const instance = await w.database.getDatabaseInstance({ name });
      return instance.state === state ? instance : undefined;
    },
    30_000,
    `${name} to be ${state}`,
  );
}

/** Whether a postmaster runs for the instance: its pid file names a live process. */
function postmasterRunning(uid: string): boolean {
  const file = join(pier.dataDir, 'instances', uid, 'postmaster.pid');
  if (!existsSync(file)) return false;
  const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('the SDK drives an instance through its whole life', async () => {
  const started = Date.now();
  const created = await w.database.createDatabaseInstance({
    database_instance: { name: 'order-mgmt-db', capacity: 'CU_2', stopped: false },
  });
  assert.equal(created.name, 'order-mgmt-db');
  assert.equal(created.capacity, 'CU_2');
  assert.equal(created.state, 'STARTING');
  assert.match(created.uid ?? '', /^[0-9a-f-]{36}$/);
  assert.equal(created.creator, 'admin@pier.local');
  assert.match(created.pg_version ?? '', /^PG_VERSION_\d+$/);
  assert.match(created.read_write_dns ?? '', /^127\.1\.\d+\.\d+$/);
  assert.equal(created.effective_retention_window_in_days, 7);
  assert.equal(created.effective_node_count, 1);

  const available = await waitForState('order-mgmt-db', 'AVAILABLE');
  assert.ok(Date.now() - started < 10_000, 'AVAILABLE within seconds');
  assert.equal(available.effective_stopped, false);
  const uid = available.uid!;
  assert.equal(postmasterRunning(uid), true);

  // The creator's role exists and belongs to databricks_superuser.
  const client = superuserClient(uid);
  await client.connect();
  const roles = await client.query(
    `SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member
      WHERE m.roleid = 'databricks_superuser'::regrole`,
  );
  assert.deepEqual(
    roles.rows.map((row) => row.rolname),
    ['admin@pier.local'],
  );
  const databases = await client.query(
    `SELECT datname FROM pg_database WHERE datname IN ('postgres', 'databricks_postgres') ORDER BY 1`,
  );
  assert.deepEqual(
    databases.rows.map((row) => row.datname),
    ['databricks_postgres', 'postgres'],
  );
  const sharedBuffers = await client.query('SHOW max_connections');
  assert.equal(sharedBuffers.rows[0].max_connections, '500');
  await client.end();

  // findByUid and get agree.
  const found = await w.database.findDatabaseInstanceByUid({ uid });
  assert.equal(found.name, 'order-mgmt-db');

  // Stop: STOPPED means no process is left.
  await patchInstance('order-mgmt-db', 'stopped', { stopped: true });
  const stopped = await waitForState('order-mgmt-db', 'STOPPED');
  assert.equal(stopped.effective_stopped, true);
  assert.equal(postmasterRunning(uid), false, 'no Postgres process is left');

  // Start again.
  await patchInstance('order-mgmt-db', 'stopped', { stopped: false });
  await waitForState('order-mgmt-db', 'AVAILABLE');

  // Delete: the data directory goes, then the record.
  await w.database.deleteDatabaseInstance({ name: 'order-mgmt-db', purge: true });
  await eventually(
    async () => {
      try {
        await w.database.getDatabaseInstance({ name: 'order-mgmt-db' });
        return undefined;
      } catch (error) {
        return (error as { errorCode?: string }).errorCode === 'RESOURCE_DOES_NOT_EXIST' ? true : undefined;
      }
    },
    30_000,
    'the instance to be gone',
  );
  assert.equal(existsSync(join(pier.dataDir, 'instances', uid)), false, 'data directory removed');
});

test('resizing keeps every row and applies the new settings', async () => {
  await w.database.createDatabaseInstance({ database_instance: { name: 'resize-me', capacity: 'CU_1' } });
  const instance = await waitForState('resize-me', 'AVAILABLE');
  const before = superuserClient(instance.uid!);
  await before.connect();
  await before.query('CREATE TABLE orders (id int PRIMARY KEY, total numeric)');
  await before.query('INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 1000) g');
  assert.equal((await before.query('SHOW max_connections')).rows[0].max_connections, '250');
  await before.end();

  const updating = await patchInstance('resize-me', 'capacity', { capacity: 'CU_4' });
  assert.equal(updating.capacity, 'CU_4');
  assert.equal(updating.state, 'UPDATING');
  const resized = await waitForState('resize-me', 'AVAILABLE');
  assert.equal(resized.effective_capacity, 'CU_4');

  const afterClient = superuserClient(instance.uid!);
  await afterClient.connect();
  const count = await afterClient.query('SELECT count(*)::int AS n, sum(total)::text AS s FROM orders');
  assert.deepEqual(count.rows[0], { n: 1000, s: '750750.0' });
  assert.equal((await afterClient.query('SHOW max_connections')).rows[0].max_connections, '1000');
  await afterClient.end();
});

test('listing pages through every instance with page_size and page_token', async () => {
  const names = ['page-a', 'page-b', 'page-c', 'page-d', 'page-e'];
  for (const name of names)
    await w.database.createDatabaseInstance({ database_instance: { name, capacity: 'CU_1', stopped: true } });
  const firstPage = await fetch(`${pier.apiUrl}/api/2.0/database/instances?page_size=2`, {
    headers: { authorization: `Bearer ${pier.adminToken}` },
  }).then((r) => r.json() as Promise<{ database_instances: DatabaseInstance[]; next_page_token?: string }>);
  assert.equal(firstPage.database_instances.length, 2);
  assert.ok(firstPage.next_page_token);

  const seen: string[] = [];
  for await (const instance of w.database.listDatabaseInstances({ page_size: 2 })) seen.push(instance.name);
  for (const name of names) assert.ok(seen.includes(name), `${name} listed`);
  assert.equal(new Set(seen).size, seen.length, 'no instance listed twice');
  assert.deepEqual(seen, [...seen].sort());

  // Created stopped: provisioned but never started.
  const stopped = await waitForState('page-a', 'STOPPED');
  assert.equal(stopped.effective_stopped, true);
});
