import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { openDeltaTable } from '../../src/delta/index.js';
import { advanceDemoTable, DAILY_REVENUE_KEY } from '../../src/lakehouse/demo.js';
import { targetLayout } from '../../src/sync/columns.js';
import { collect } from '../delta/expected.js';
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
import { deltaCanonical, postgresCanonical } from './compare.js';

/**
 * Two Pier processes on one external store, on one host. Each runs the
 * pipelines of the instances made through it, under the lease
 * ('sync_pipeline', id) held by its node id. When one is killed with -9 its
 * Postgres servers live on; once its heartbeat and leases have run out the
 * other node reaches them through their sockets and takes the pipelines
 * over, exactly where they were; when the killed node is back it gets them
 * handed back. A dead node whose servers are gone too is out of reach: its
 * pipelines wait for it, and a request that needs its Postgres says so.
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

interface UpdateJson {
  state: string;
  cause: string;
  message?: string;
}

test('a node killed with -9 or hung: another node on the host takes its pipelines over, exactly, and hands them back when it returns; when both die, the first back runs both', async () => {
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
  const [firstUid] = await Promise.all([
    availableInstance(first, token, 'first-db'),
    availableInstance(second, token, 'second-db'),
  ]);
  // Each request through the other node: the pipeline still runs where its instance does.
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
  const firstPipeline = pipelineOf(onFirst);

  const statusOf = async (via: PierProcess, name: string) => {
    const { body } = await api(via, token, 'GET', `/api/2.0/database/synced_tables/${name}`);
    // biome-ignore lint/suspicious/noExplicitAny: the API's JSON, read field by field.
    return body.data_synchronization_status as any;
  };
  const versionOf = async (via: PierProcess, name: string) =>
    (await statusOf(via, name))?.last_sync?.delta_table_sync_info?.delta_commit_version as number | undefined;
  const reaches = (via: PierProcess, name: string, version: number, ms = 60_000) =>
    eventually(
      async () => ((await versionOf(via, name)) ?? -1) >= version || undefined,
      ms,
      `${name} at version ${version}`,
    );
  const updates = async (via: PierProcess) =>
    (await api(via, token, 'GET', `/api/2.0/pipelines/${firstPipeline}/updates`)).body
      .updates as UpdateJson[];
  const continuousRuns = async (via: PierProcess) =>
    (await updates(via)).filter((u) => u.cause !== 'API_CALL' || u.state !== 'COMPLETED');

  // Postgres of first-db, read straight through its socket (its node's proxy may be dead).
  const firstClient = () =>
    new pg.Client({
      host: join(first.dataDir, 'run', firstUid),
      port: 5432,
      user: 'postgres',
      database: 'databricks_postgres',
    });
  let firstPostgres = firstClient();
  const exactlyAsDelta = async (version: number) => {
    const snapshot = await openDeltaTable(location, { version });
    const layout = targetLayout(snapshot.schema, { primaryKey: DAILY_REVENUE_KEY });
    assert.deepEqual(
      await postgresCanonical(firstPostgres, { schema: 'gold', table: 'on_first' }, layout),
      deltaCanonical(layout, await collect(snapshot.scan())),
      `on_first at Delta version ${version}`,
    );
  };

  let version = (await openDeltaTable(location)).version;
  /** The first node holds its pipeline again, and the next commit arrives exactly. */
  const handedBackAndFollowing = async (who: string) => {
    await eventually(
      async () => ((await holders()).get(firstPipeline)?.holder === firstNode ? true : undefined),
      20_000,
      `the pipeline handed back to ${who}`,
    );
    version = await advanceDemoTable(location);
    await reaches(second, 'analytics.gold.on_first', version, 20_000);
    await exactlyAsDelta(version);
  };
  await reaches(first, 'analytics.gold.on_first', version);
  await reaches(first, 'analytics.gold.on_second', version);
  await firstPostgres.connect();
  firstPostgres.on('error', () => {});
  await exactlyAsDelta(version);

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
  assert.equal(leases.get(firstPipeline)?.holder, firstNode);
  assert.equal(leases.get(pipelineOf(onSecond))?.holder, secondNode);

  // Both nodes, as any node reports them.
  const viaSecond = { DATABRICKS_HOST: second.apiUrl, DATABRICKS_TOKEN: token };
  const nodes = await runPier(['nodes', 'list', '--json'], viaSecond);
  assert.equal(nodes.code, 0, nodes.stderr);
  const listed = JSON.parse(nodes.stdout) as Record<string, unknown>[];
  assert.deepEqual(
    listed
      .map((n) => [n.node_id, n.state, n.is_this_node, n.instance_count, n.pipelines_running])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    [
      [firstNode, 'RUNNING', false, 1, 1],
      [secondNode, 'RUNNING', true, 1, 1],
    ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
  );

  // kill -9 of the first node once it follows its source; a new commit meanwhile.
  await eventually(
    async () => (await updates(second)).some((u) => u.state === 'RUNNING') || undefined,
    20_000,
    'the continuous run',
  );
  await first.kill();
  const killedAt = Date.now();
  version = await advanceDemoTable(location);
  await reaches(second, 'analytics.gold.on_second', version);
  // The second node sees the first's process gone (same host) and takes its pipeline over at once.
  await reaches(second, 'analytics.gold.on_first', version, 10_000);
  const takeoverMs = Date.now() - killedAt;
  console.log(`kill -9 → the next commit applied by the other node: ${(takeoverMs / 1000).toFixed(1)} s`);
  leases = await holders();
  assert.equal(leases.get(firstPipeline)?.holder, secondNode);
  await exactlyAsDelta(version);
  const afterTakeover = await runPier(['nodes', 'list', '--json'], viaSecond);
  const states = new Map(
    (JSON.parse(afterTakeover.stdout) as Record<string, unknown>[]).map((n) => [n.node_id, n]),
  );
  assert.equal(states.get(firstNode)?.state, 'NOT_RESPONDING');
  assert.equal(states.get(secondNode)?.pipelines_running, 2);
  const metrics = await (
    await fetch(`${second.apiUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  ).text();
  assert.match(metrics, new RegExp(`^pier_node_up\\{node="${firstNode}"\\} 0$`, 'm'));
  assert.match(metrics, new RegExp(`^pier_node_sync_pipelines\\{node="${secondNode}"\\} 2$`, 'm'));
  // The dead process's run is closed; the takeover opened one of its own.
  assert.deepEqual(
    (await continuousRuns(second)).map((u) => [u.state, u.cause]),
    [
      ['RUNNING', 'INFRASTRUCTURE_MAINTENANCE'],
      ['CANCELED', 'API_CALL'],
    ],
  );

  // The taken-over pipeline follows the source: commit after commit, exact.
  version = await advanceDemoTable(location);
  await reaches(second, 'analytics.gold.on_first', version, 10_000);
  await exactlyAsDelta(version);
  // A request that needs first-db's Postgres works through the second node too.
  const roles = await api(second, token, 'GET', '/api/2.0/database/instances/first-db/roles');
  assert.equal(roles.status, 200, JSON.stringify(roles.body));

  // The first node, restarted on its data dir, gets its pipeline handed back and follows on.
  const restarted = await startPier({ dataDir: first.dataDir, args: ['--store-url', external.url] });
  piers[0] = restarted;
  await handedBackAndFollowing('the restarted node');
  const history = await continuousRuns(second);
  assert.deepEqual(
    history.map((u) => [u.state, u.cause]),
    [
      ['RUNNING', 'INFRASTRUCTURE_MAINTENANCE'],
      ['CANCELED', 'INFRASTRUCTURE_MAINTENANCE'],
      ['CANCELED', 'API_CALL'],
    ],
  );
  assert.match(String(history[1].message), /Handed back to Pier node .* where instance 'first-db' runs/);
  assert.equal((await holders()).get(pipelineOf(onSecond))?.holder, secondNode);

  // A hung node (SIGSTOP): its process is there, so the other node waits for its heartbeat and lease to run out…
  // …and it hung inside a transaction that holds the progress row's lock (as a sync session of that node would).
  const zombie = new pg.Client({
    host: join(first.dataDir, 'run', firstUid),
    port: 5432,
    user: 'postgres',
    database: 'databricks_postgres',
    application_name: `pier-sync ${firstNode}`,
  });
  await zombie.connect();
  let zombieEnded: { code?: string } | undefined;
  zombie.on('error', (error) => {
    zombieEnded = error as { code?: string };
  });
  const zombiePid = (await zombie.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  await zombie.query('BEGIN');
  await zombie.query(
    `SELECT delta_version FROM pier_sync.progress WHERE target_schema = 'gold' AND target_table = 'on_first' FOR UPDATE`,
  );
  restarted.child.kill('SIGSTOP');
  const hungAt = Date.now();
  version = await advanceDemoTable(location);
  await reaches(second, 'analytics.gold.on_first', version, 60_000);
  const hungMs = Date.now() - hungAt;
  console.log(
    `a hung node (SIGSTOP) → the next commit applied by the other node: ${(hungMs / 1000).toFixed(1)} s`,
  );
  assert.ok(hungMs >= 14_000, `taken over once the heartbeat ran out, not before (${hungMs} ms)`);
  assert.equal((await holders()).get(firstPipeline)?.holder, secondNode);
  // The taking node ended the hung node's session: its transaction rolled back, its lock gone.
  assert.ok(zombieEnded, 'the hung session saw its connection end');
  const left = await firstPostgres.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [zombiePid]);
  assert.equal(left.rowCount, 0, 'the hung session is gone from the server');
  await zombie.end().catch(() => {});
  // …and once it runs again it gets the pipeline back: nothing applied twice, nothing missed.
  restarted.child.kill('SIGCONT');
  await handedBackAndFollowing('the resumed node');
  const runs = await continuousRuns(second);
  assert.deepEqual(
    runs.filter((u) => u.state === 'RUNNING').map((u) => u.cause),
    ['INFRASTRUCTURE_MAINTENANCE'],
    'one continuous run open, the resumed node’s',
  );
  assert.equal(runs[0].state, 'RUNNING');

  // A dead node whose Postgres is gone too: its pipeline waits for it, and its instance is out of reach.
  // Held still while its server stops, so neither it restarts the server nor the other node sees it gone first.
  restarted.child.kill('SIGSTOP');
  const pid = Number(
    (await readFile(join(first.dataDir, 'instances', firstUid, 'postmaster.pid'), 'utf8')).split('\n')[0],
  );
  await firstPostgres.end().catch(() => {});
  process.kill(pid, 'SIGINT');
  // A clean shutdown removes postmaster.pid last (the process may linger as a zombie of the stopped Pier).
  const pidFile = join(first.dataDir, 'instances', firstUid, 'postmaster.pid');
  await eventually(
    async () => (existsSync(pidFile) ? undefined : true),
    20_000,
    'the first node’s Postgres to stop',
  );
  await restarted.kill();
  await eventually(
    async () => ((await holders()).get(firstPipeline)?.expired ? true : undefined),
    30_000,
    'the dead node’s lease to run out',
  );
  await new Promise((resolve) => setTimeout(resolve, 2000));
  leases = await holders();
  assert.equal(leases.get(firstPipeline)?.holder, firstNode, 'not taken by a node that cannot reach it');
  const unreachable = await api(second, token, 'GET', '/api/2.0/database/instances/first-db/roles');
  assert.equal(unreachable.status, 503, JSON.stringify(unreachable.body));
  assert.equal(unreachable.body.error_code, 'TEMPORARILY_UNAVAILABLE');
  assert.match(
    String(unreachable.body.message),
    new RegExp(`runs on Pier node ${firstNode} .*which is not running.*Start that node again`),
  );
  const waiting = await eventually(
    async () => {
      const status = await statusOf(second, 'analytics.gold.on_first');
      return /is not running/.test(String(status?.message)) ? status : undefined;
    },
    15_000,
    'the synced table to say why it waits',
  );
  assert.equal(waiting.detailed_state, 'SYNCED_TABLE_ONLINE_PIPELINE_FAILED');
  assert.match(
    String(waiting.message),
    new RegExp(
      `^Pier node ${firstNode}, where instance 'first-db' runs, is not running .*catches up by itself once that node runs again\\.$`,
    ),
  );
  // Forgetting a node: only one that is not running and has no instances.
  const third = await startPier({ args: ['--store-url', external.url], env: { PIER_MASTER_KEY: masterKey } });
  const thirdNode = await nodeId(third);
  await third.stop();
  piers.push(third);
  const forget = (id: string) => api(second, token, 'DELETE', `/api/2.0/pier/nodes/${id}`);
  const running = await forget(secondNode);
  assert.equal(running.status, 400);
  assert.match(String(running.body.message), /is running .*stop it first/);
  const withInstances = await forget(firstNode);
  assert.equal(withInstances.status, 400);
  assert.match(String(withInstances.body.message), /still has instance 'first-db', which only it runs/);
  const forgotten = await runPier(['nodes', 'forget', thirdNode], viaSecond);
  assert.equal(forgotten.code, 0, forgotten.stderr);
  const remaining = JSON.parse((await runPier(['nodes', 'list', '--json'], viaSecond)).stdout) as {
    node_id: string;
  }[];
  assert.deepEqual(remaining.map((n) => n.node_id).sort(), [firstNode, secondNode].sort());
  assert.equal((await forget(thirdNode)).status, 404);

  // The node back (its Postgres started again by it): the table heals and catches up.
  const again = await startPier({ dataDir: first.dataDir, args: ['--store-url', external.url] });
  piers[0] = again;
  version = await advanceDemoTable(location);
  await reaches(second, 'analytics.gold.on_first', version, 60_000);
  const healed = await statusOf(second, 'analytics.gold.on_first');
  assert.equal(healed.detailed_state, 'SYNCED_TABLE_ONLINE_CONTINUOUS_UPDATE', JSON.stringify(healed));

  // Both die: the first (its pipeline taken over by the second), then the second holding both.
  await again.kill();
  await eventually(
    async () => ((await holders()).get(firstPipeline)?.holder === secondNode ? true : undefined),
    10_000,
    'the second node to take the first’s pipeline',
  );
  await second.kill();
  // The first alone comes back: it takes its own pipeline from the dead second at once, and the second's too.
  const last = await startPier({ dataDir: first.dataDir, args: ['--store-url', external.url] });
  piers[0] = last;
  version = await advanceDemoTable(location);
  await reaches(last, 'analytics.gold.on_first', version, 20_000);
  await reaches(last, 'analytics.gold.on_second', version, 20_000);
  leases = await holders();
  assert.equal(leases.get(firstPipeline)?.holder, firstNode);
  assert.equal(leases.get(pipelineOf(onSecond))?.holder, firstNode);
  firstPostgres = firstClient();
  await firstPostgres.connect();
  firstPostgres.on('error', () => {});
  await exactlyAsDelta(version);
  await firstPostgres.end();
  await store.end();
});
