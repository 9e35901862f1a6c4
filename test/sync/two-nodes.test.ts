import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type pg from 'pg';
import { openDeltaTable } from '../../src/delta/index.js';
import { advanceDemoTable, DAILY_REVENUE_KEY } from '../../src/lakehouse/demo.js';
import { availableInstance } from '../helpers/access.js';
import {
  api,
  eventually,
  type PierProcess,
  removePier,
  runPier,
  startPier,
  tempDataDir,
} from '../helpers/pier.js';
import { type ExternalPostgres, startExternalPostgres } from '../helpers/postgres.js';

/**
 * Two Pier processes on one external store. A pipeline is run by the node
 * that runs its instance (the instance's Postgres socket is local to it),
 * under the lease ('sync_pipeline', id) held by that node's id. So the two
 * nodes split the pipelines by instance; when one is killed with -9 the
 * other does not take its pipelines (it could not reach their instance),
 * even after their leases have expired; the killed node, restarted on its
 * data dir, takes them back at once and catches up.
 */

let external: ExternalPostgres | undefined;
const piers: PierProcess[] = [];
after(async () => {
  for (const pier of piers) await removePier(pier).catch(() => {});
  await external?.remove();
});

async function nodeId(pier: PierProcess): Promise<string> {
  return (await readFile(join(pier.dataDir, 'node-id'), 'utf8')).trim();
}

function syncedTable(name: string, instance: string) {
  return {
    name,
    database_instance_name: instance,
    logical_database_name: 'databricks_postgres',
    spec: {
      source_table_full_name: 'analytics.gold.daily_revenue',
      primary_key_columns: DAILY_REVENUE_KEY,
      scheduling_policy: 'CONTINUOUS',
      create_database_objects_if_missing: true,
    },
  };
}

test('two Pier nodes on one store share the pipelines by instance; a node killed with -9 takes its own back on restart', async () => {
  external = await startExternalPostgres('control_plane');
  const first = await startPier({ dataDir: await tempDataDir(), args: ['--store-url', external.url] });
  piers.push(first);
  const masterKey = (await readFile(join(first.dataDir, 'keys', 'master.key'), 'utf8')).trim();
  const second = await startPier({
    args: ['--store-url', external.url],
    env: { PIER_MASTER_KEY: masterKey },
  });
  piers.push(second);
  const token = first.adminToken; // one workspace: the first node's admin token works on both

  const demo = await runPier(['demo', '--data-dir', first.dataDir]);
  assert.equal(demo.code, 0, demo.stderr);
  const location = JSON.parse(demo.stdout).storage_location as string;
  await Promise.all([
    availableInstance(first, token, 'first-db'),
    availableInstance(second, token, 'second-db'),
  ]);
  const onFirst = await api(
    second,
    token,
    'POST',
    '/api/2.0/database/synced_tables',
    syncedTable('analytics.gold.on_first', 'first-db'),
  );
  assert.equal(onFirst.status, 200, JSON.stringify(onFirst.body));
  const onSecond = await api(
    first,
    token,
    'POST',
    '/api/2.0/database/synced_tables',
    syncedTable('analytics.gold.on_second', 'second-db'),
  );
  assert.equal(onSecond.status, 200, JSON.stringify(onSecond.body));
  const pipelineOf = (created: { body: Record<string, unknown> }) =>
    (created.body.data_synchronization_status as { pipeline_id: string }).pipeline_id;

  const versionOf = async (via: PierProcess, name: string) => {
    const { body } = await api(via, token, 'GET', `/api/2.0/database/synced_tables/${name}`);
    // biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read field by field.
    const status = body.data_synchronization_status as any;
    return status?.last_sync?.delta_table_sync_info?.delta_commit_version as number | undefined;
  };
  const reaches = (via: PierProcess, name: string, version: number) =>
    eventually(
      async () => ((await versionOf(via, name)) ?? -1) >= version || undefined,
      60_000,
      `${name} at version ${version}`,
    );
  let version = (await openDeltaTable(location)).version;
  await reaches(first, 'analytics.gold.on_first', version);
  await reaches(first, 'analytics.gold.on_second', version);

  // Each pipeline's lease is held by the node that runs its instance, whichever node took the request.
  const store: pg.Client = await external.connect();
  store.on('error', () => {});
  const holders = async () => {
    const { rows } = await store.query<{ key: string; holder: string | null; expired: boolean }>(
      `SELECT key, holder, expires_at <= clock_timestamp() AS expired FROM leases WHERE resource = 'sync_pipeline'`,
    );
    return new Map(rows.map((row) => [row.key, row]));
  };
  const [firstNode, secondNode] = [await nodeId(first), await nodeId(second)];
  let leases = await holders();
  assert.equal(leases.get(pipelineOf(onFirst))?.holder, firstNode);
  assert.equal(leases.get(pipelineOf(onSecond))?.holder, secondNode);

  // kill -9 of the first node once it follows its source: the second goes on with its own pipeline…
  await eventually(
    async () => {
      const { body } = await api(second, token, 'GET', `/api/2.0/pipelines/${pipelineOf(onFirst)}/updates`);
      return (body.updates as { state: string }[]).some((u) => u.state === 'RUNNING') || undefined;
    },
    20_000,
    'the continuous run',
  );
  await first.kill();
  version = await advanceDemoTable(location);
  await reaches(second, 'analytics.gold.on_second', version);
  // …and leaves the first node's alone, also once its lease has expired (15 s): its instance is not here.
  await eventually(
    async () => ((await holders()).get(pipelineOf(onFirst))?.expired ? true : undefined),
    30_000,
    'the dead node’s lease to expire',
  );
  await new Promise((resolve) => setTimeout(resolve, 1500));
  leases = await holders();
  assert.equal(leases.get(pipelineOf(onFirst))?.holder, firstNode);
  assert.equal(leases.get(pipelineOf(onFirst))?.expired, true);
  assert.ok(
    ((await versionOf(second, 'analytics.gold.on_first')) ?? -1) < version,
    'not synced by the second node',
  );

  // The first node restarted on its data dir takes its pipeline back at once and catches up.
  const restarted = await startPier({ dataDir: first.dataDir, args: ['--store-url', external.url] });
  piers[0] = restarted;
  await reaches(second, 'analytics.gold.on_first', version);
  leases = await holders();
  assert.equal(leases.get(pipelineOf(onFirst))?.holder, firstNode);
  assert.equal(leases.get(pipelineOf(onFirst))?.expired, false);
  assert.equal(leases.get(pipelineOf(onSecond))?.holder, secondNode);

  // The continuous run the dead process left RUNNING is closed; a new one records the takeover.
  const { body } = await api(second, token, 'GET', `/api/2.0/pipelines/${pipelineOf(onFirst)}/updates`);
  const runs = (body.updates as { state: string; cause: string }[]).filter(
    (u) => u.cause !== 'API_CALL' || u.state !== 'COMPLETED',
  );
  assert.deepEqual(
    runs.map((u) => [u.state, u.cause]),
    [
      ['RUNNING', 'INFRASTRUCTURE_MAINTENANCE'],
      ['CANCELED', 'API_CALL'],
    ],
  );
  await store.end();
});
