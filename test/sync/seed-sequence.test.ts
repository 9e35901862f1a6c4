import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { openDeltaTable } from '../../src/delta/index.js';
import { DAILY_REVENUE_KEY } from '../../src/lakehouse/demo.js';
import { targetLayout } from '../../src/sync/columns.js';
import { collect } from '../delta/expected.js';
import { databaseCredential } from '../helpers/access.js';
import { api, type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';
import { deltaCanonical } from './compare.js';

const execFileAsync = promisify(execFile);
let pier: PierProcess;

before(async () => {
  pier = await startPier();
});
after(async () => removePier(pier));

/** `npx pier …` against this Pier. */
async function pierCli(...args: string[]): Promise<string> {
  const result = await runPier([...args, '--data-dir', pier.dataDir]);
  assert.equal(result.code, 0, `pier ${args.join(' ')}:\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

test("the seed's sequence, verbatim, through the CLI on a fresh pier up", async (t) => {
  const demo = JSON.parse(await pierCli('demo'));
  await pierCli('database', 'create-database-instance', 'order-mgmt-db', '--capacity', 'CU_2');
  const registered = JSON.parse(
    await pierCli(
      'database',
      'register-database-instance',
      'order-mgmt-db',
      '--catalog',
      'analytics',
      '--schema',
      'operational',
    ),
  );
  assert.equal(registered.schema.full_name, 'analytics.operational');
  const synced = JSON.parse(
    await pierCli(
      'database',
      'create-synced-table',
      '--instance-name',
      'order-mgmt-db',
      '--source-table',
      'analytics.gold.daily_revenue',
      '--target-table',
      'daily_revenue',
      '--scheduling-policy',
      'CONTINUOUS',
    ),
  );
  assert.equal(synced.name, 'analytics.operational.daily_revenue');
  assert.equal(synced.data_synchronization_status.detailed_state, 'SYNCED_TABLE_ONLINE_CONTINUOUS_UPDATE');

  const advanced = JSON.parse(await pierCli('demo', 'advance'));
  const committedAt = Date.now();

  const instance = await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances/order-mgmt-db');
  const token = await databaseCredential(pier, pier.adminToken, 'order-mgmt-db');
  const conninfo = `host=${instance.body.read_write_dns} port=${pier.proxyPort} dbname=databricks_postgres user=admin@pier.local sslmode=verify-full sslrootcert=${pier.caCertPath}`;
  const select = `SELECT day, region, orders, revenue FROM operational.daily_revenue`;
  const snapshot = await openDeltaTable(demo.storage_location, { version: advanced.version });
  const layout = targetLayout(snapshot.schema, { primaryKey: DAILY_REVENUE_KEY });
  // Canonical text quotes strings and dates; psql prints them bare.
  const expected = deltaCanonical(layout, await collect(snapshot.scan())).map((row) =>
    row.replaceAll('"', ''),
  );
  let seenAfterMs: number | undefined;
  let lastRows: string[] = [];
  while (Date.now() - committedAt < 15_000) {
    const psql = await execFileAsync('psql', [conninfo, '-tA', '-F', ' | ', '-c', select], {
      env: { ...process.env, PGPASSWORD: token },
    });
    const rows = psql.stdout.trim().split('\n').filter(Boolean).sort();
    lastRows = rows;
    if (rows.length === expected.length && rows.join('\n') === expected.join('\n')) {
      seenAfterMs = Date.now() - committedAt;
      break;
    }
  }
  assert.ok(
    seenAfterMs !== undefined,
    `the new commit never showed through the proxy: ${JSON.stringify(lastRows.slice(0, 3))} vs ${JSON.stringify(expected.slice(0, 3))} (${lastRows.length} vs ${expected.length})`,
  );
  t.diagnostic(`the new commit was visible through the proxy after ${seenAfterMs} ms`);
  // "Within about a second" (psql's own start-up included; generous on a loaded 2-core host).
  assert.ok(seenAfterMs < 3000, `the new commit took ${seenAfterMs} ms`);
});

test('the synced-table verbs of the CLI', async () => {
  const name = 'analytics.operational.daily_revenue';
  const refreshed = JSON.parse(
    await pierCli('database', 'sync-synced-table', name, '--full-refresh', '--wait'),
  );
  assert.equal(refreshed.name, name);
  const listed = JSON.parse(await pierCli('database', 'list-synced-database-tables', 'order-mgmt-db'));
  assert.deepEqual(
    listed.map((t: { name: string }) => t.name),
    [name],
  );
  const got = JSON.parse(await pierCli('database', 'get-synced-database-table', name));
  const pipelineId = got.data_synchronization_status.pipeline_id;
  const updates = await api(pier, pier.adminToken, 'GET', `/api/2.0/pipelines/${pipelineId}/updates`);
  assert.equal((updates.body.updates as { full_refresh: boolean }[])[0].full_refresh, true);

  // A source without a key Pier knows needs --primary-key.
  const noKey = await runPier([
    'database',
    'create-synced-table',
    '--instance-name',
    'order-mgmt-db',
    '--source-table',
    'analytics.gold.other',
    '--target-table',
    'other',
    '--scheduling-policy',
    'SNAPSHOT',
    '--data-dir',
    pier.dataDir,
  ]);
  assert.notEqual(noKey.code, 0);
  assert.match(noKey.stderr, /--primary-key is required/);

  // Shared by a second table through existing_pipeline_id (JSON form of the Databricks CLI).
  const shared = JSON.parse(
    await pierCli(
      'database',
      'create-synced-database-table',
      'analytics.operational.revenue_copy',
      '--json',
      JSON.stringify({
        spec: {
          source_table_full_name: 'analytics.gold.daily_revenue',
          primary_key_columns: ['day', 'region'],
          scheduling_policy: 'TRIGGERED',
          existing_pipeline_id: pipelineId,
        },
      }),
    ),
  );
  assert.equal(shared.data_synchronization_status.pipeline_id, pipelineId);
  const pipeline = await api(pier, pier.adminToken, 'GET', `/api/2.0/pipelines/${pipelineId}`);
  assert.match(String(pipeline.body.name), /revenue_copy/);

  await pierCli('database', 'delete-synced-database-table', 'analytics.operational.revenue_copy');
  await pierCli('database', 'delete-synced-database-table', name, '--purge-data');
  const after = JSON.parse(await pierCli('database', 'list-synced-database-tables', 'order-mgmt-db'));
  assert.deepEqual(after, []);
  const gone = await api(pier, pier.adminToken, 'GET', `/api/2.0/pipelines/${pipelineId}`);
  assert.equal(gone.status, 404);
});
