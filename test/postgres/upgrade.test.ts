import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { openDeltaTable } from '../../src/delta/index.js';
import { advanceDemoTable, DAILY_REVENUE_KEY } from '../../src/lakehouse/demo.js';
import { baseBackups, createChild, INSTANCES, instanceInState } from '../backups/instances.js';
import { availableInstance, instanceSuperuser } from '../helpers/access.js';
import { api, eventually, type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';
import { expectError, lro, PG, query } from './autoscaling.js';

/**
 * The in-place upgrade of an instance that has a point-in-time child and a
 * synced table: the child becomes a branch holding its own rows and roles,
 * and the synced table keeps applying Delta commits into the upgraded server.
 */

const ADMIN = 'admin@pier.local';
const SYNCED = 'analytics.gold.revenue_upgraded';

let pier: PierProcess;
let demoLocation: string;
let pipelineId: string;

async function rows(uid: string, sql: string, database = 'postgres') {
  const client: pg.Client = await instanceSuperuser(pier, uid, database);
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

async function syncedVersion(): Promise<number | undefined> {
  const { body } = await api(pier, pier.adminToken, 'GET', `/api/2.0/database/synced_tables/${SYNCED}`);
  const status = body.data_synchronization_status as
    | { last_sync?: { delta_table_sync_info?: { delta_commit_version?: number | string } } }
    | undefined;
  const version = status?.last_sync?.delta_table_sync_info?.delta_commit_version;
  return version === undefined ? undefined : Number(version);
}

before(async () => {
  pier = await startPier();
  const demo = await runPier(['demo', '--data-dir', pier.dataDir]);
  assert.equal(demo.code, 0, demo.stderr);
  demoLocation = JSON.parse(demo.stdout).storage_location;
  const uid = await availableInstance(pier, pier.adminToken, 'shop');
  await rows(
    uid,
    'CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 100)',
  );
  const created = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/synced_tables', {
    name: SYNCED,
    database_instance_name: 'shop',
    logical_database_name: 'databricks_postgres',
    spec: {
      source_table_full_name: 'analytics.gold.daily_revenue',
      primary_key_columns: DAILY_REVENUE_KEY,
      scheduling_policy: 'TRIGGERED',
      create_database_objects_if_missing: true,
    },
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  pipelineId = (created.body.data_synchronization_status as { pipeline_id: string }).pipeline_id;
  await baseBackups(pier, 'shop');
  await createChild(pier, 'shop-copy', { name: 'shop' });
  const child = await instanceInState(pier, 'shop-copy', 'AVAILABLE');
  // The child diverges from its parent: a row, a role and a grant only it has.
  await rows(
    child.uid as string,
    'INSERT INTO orders VALUES (1001); CREATE ROLE copy_only NOLOGIN; GRANT SELECT ON orders TO copy_only',
  );
  await rows(uid, 'INSERT INTO orders VALUES (2001)');
  await eventually(
    async () => ((await syncedVersion()) !== undefined ? true : undefined),
    60_000,
    'first sync',
  );
});

after(async () => {
  if (pier) await removePier(pier);
});

test('the point-in-time child becomes a branch of the project with its own rows and roles', async () => {
  const upgraded = await api(pier, pier.adminToken, 'PATCH', `${INSTANCES}/shop/upgrade`);
  assert.equal(upgraded.status, 200, JSON.stringify(upgraded.body));
  const { body: branch } = await api(pier, pier.adminToken, 'GET', `${PG}/projects/shop/branches/shop-copy`);
  const status = branch.status as Record<string, unknown>;
  assert.equal(status.source_branch, 'projects/shop/branches/production');
  assert.match(String(status.source_branch_lsn), /^[0-9A-F]+\/[0-9A-F]+$/);
  assert.equal(status.current_state, 'READY');
  const copy = 'projects/shop/branches/shop-copy/endpoints/primary';
  const production = 'projects/shop/branches/production/endpoints/primary';
  const count = 'SELECT count(*)::int AS n, max(id)::int AS top FROM orders';
  assert.deepEqual(await query(pier, pier.adminToken, copy, ADMIN, count, 'postgres'), [
    { n: 101, top: 1001 },
  ]);
  assert.deepEqual(await query(pier, pier.adminToken, production, ADMIN, count, 'postgres'), [
    { n: 101, top: 2001 },
  ]);
  const roleNames = async (name: string) => {
    const { body } = await api(pier, pier.adminToken, 'GET', `${PG}/projects/shop/branches/${name}/roles`);
    return (body.roles as { status: { postgres_role: string } }[]).map((r) => r.status.postgres_role);
  };
  assert.ok((await roleNames('shop-copy')).includes('copy_only'));
  assert.ok(!(await roleNames('production')).includes('copy_only'));
  const grant = "SELECT has_table_privilege('copy_only', 'orders', 'SELECT') AS reads";
  assert.deepEqual(await query(pier, pier.adminToken, copy, ADMIN, grant, 'postgres'), [{ reads: true }]);
  // The child is the branch now: the Provisioned API reads it but refuses changes.
  const { body: child } = await api(pier, pier.adminToken, 'GET', `${INSTANCES}/shop-copy`);
  assert.equal(child.state, 'AVAILABLE');
  expectError(
    await api(pier, pier.adminToken, 'DELETE', `${INSTANCES}/shop-copy`),
    400,
    'INVALID_STATE',
    /projects\/shop/,
  );
  expectError(
    await api(pier, pier.adminToken, 'PATCH', `${INSTANCES}/shop-copy/upgrade`),
    400,
    'INVALID_STATE',
  );
});

test('a synced table keeps syncing into the upgraded instance', async () => {
  const version = await advanceDemoTable(demoLocation);
  const started = await api(pier, pier.adminToken, 'POST', `/api/2.0/pipelines/${pipelineId}/updates`, {});
  assert.equal(started.status, 200, JSON.stringify(started.body));
  await eventually(
    async () => ((await syncedVersion()) === version ? true : undefined),
    60_000,
    `synced at version ${version}`,
  );
  const latestDay = await query(
    pier,
    pier.adminToken,
    'projects/shop/branches/production/endpoints/primary',
    ADMIN,
    'SELECT max(day)::text AS day FROM gold.revenue_upgraded',
  );
  assert.deepEqual(latestDay, [{ day: await latestDeltaDay() }]);
});

async function latestDeltaDay(): Promise<string> {
  const snapshot = await openDeltaTable(demoLocation);
  let latest = '';
  for await (const batch of snapshot.scan()) {
    for (const row of batch) if ((row.day as string) > latest) latest = row.day as string;
  }
  return latest;
}

test("the child's branch is managed like any branch: its delete with purge removes the instance", async () => {
  const done = await lro(pier, pier.adminToken, 'DELETE', 'projects/shop/branches/shop-copy?purge=true');
  assert.deepEqual(done.response, { '@type': 'type.googleapis.com/google.protobuf.Empty' });
  await eventually(
    async () =>
      (await api(pier, pier.adminToken, 'GET', `${INSTANCES}/shop-copy`)).status === 404 ? true : undefined,
    60_000,
    'shop-copy gone',
  );
  expectError(
    await api(pier, pier.adminToken, 'GET', `${PG}/projects/shop/branches/shop-copy`),
    404,
    'NOT_FOUND',
  );
});
