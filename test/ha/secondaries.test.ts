import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { api, eventually, type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';
import {
  getInstance,
  nodePaths,
  postmasterPid,
  proxyClient,
  streamingInstance,
  writableNodes,
} from './helpers.js';

let pier: PierProcess;

before(async () => {
  pier = await startPier();
});

after(async () => {
  if (pier) await removePier(pier);
});

test('readable secondaries: reads on read_only_dns, round robin, writes there get 25006', async () => {
  const created = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', {
    name: 'ha-reads',
    capacity: 'CU_1',
    node_count: 3,
    enable_readable_secondaries: true,
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  assert.equal(created.body.node_count, 3);
  assert.match(String(created.body.read_only_dns), /^127\.1\.\d+\.\d+$/);
  assert.notEqual(created.body.read_only_dns, created.body.read_write_dns);
  const instance = await streamingInstance(pier, 'ha-reads', 3);
  assert.equal(instance.effective_enable_readable_secondaries, true);

  const primary = await proxyClient(pier, instance.read_write_dns as string, 'ha-reads');
  await primary.query('CREATE TABLE orders (id int PRIMARY KEY, item text)');
  await primary.query("INSERT INTO orders VALUES (1, 'apple'), (2, 'pear')");

  const reader = await proxyClient(pier, instance.read_only_dns as string, 'ha-reads');
  try {
    const { rows } = await reader.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
    assert.equal(rows[0].standby, true, 'read_only_dns reaches a secondary');
    // Synchronous commit: what the primary acknowledged is on the secondary (applied soon after).
    const seen = await eventually(async () => {
      const { rows: orders } = await reader.query('SELECT item FROM orders ORDER BY id');
      return orders.length === 2 ? orders : undefined;
    });
    assert.deepEqual(
      seen.map((row) => row.item),
      ['apple', 'pear'],
    );
    await assert.rejects(
      reader.query("INSERT INTO orders VALUES (3, 'plum')"),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, '25006');
        return true;
      },
    );
    // Each new connection goes to the next secondary.
    const slots = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const next = await proxyClient(pier, instance.read_only_dns as string, 'ha-reads');
      slots.add((await next.query("SELECT current_setting('primary_slot_name') AS slot")).rows[0].slot);
      await next.end();
    }
    assert.deepEqual([...slots].sort(), ['pier_node_1', 'pier_node_2']);
  } finally {
    await reader.end();
    await primary.end();
  }
  assert.deepEqual(await writableNodes(pier, instance.uid), [0], 'exactly one writable node');

  // Deleting removes every node.
  assert.equal(
    (await api(pier, pier.adminToken, 'DELETE', '/api/2.0/database/instances/ha-reads')).status,
    200,
  );
  await eventually(async () => {
    const gone = await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances/ha-reads');
    return gone.status === 404 ? true : undefined;
  }, 30_000);
  for (const node of [0, 1, 2]) assert.equal(existsSync(nodePaths(pier, instance.uid, node).dataDir), false);
});

test('node_count is 1 to 3, readable secondaries need one; refused requests change nothing', async () => {
  for (const [body, message] of [
    [{ node_count: 4 }, /node_count must be between 1 and 3/],
    [{ node_count: 0 }, /node_count must be between 1 and 3/],
    [{ node_count: 1, enable_readable_secondaries: true }, /set node_count to 2 or 3/],
  ] as const) {
    const refused = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', {
      name: 'ha-refused',
      ...body,
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error_code, 'INVALID_PARAMETER_VALUE');
    assert.match(String(refused.body.message), message);
  }
  const missing = await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances/ha-refused');
  assert.equal(missing.status, 404);
});

test('stop, start and resize keep the secondary; a failover request needs a streaming one', async () => {
  const created = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', {
    name: 'ha-life',
    node_count: 2,
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  assert.equal(created.body.read_only_dns, undefined, 'no read_only_dns without readable secondaries');
  const { uid, read_write_dns: host } = await streamingInstance(pier, 'ha-life', 2);
  const primary = await proxyClient(pier, host as string, 'ha-life');
  await primary.query('CREATE TABLE kept (n int)');
  await primary.query('INSERT INTO kept SELECT generate_series(1, 100)');
  await primary.end();

  const patch = (mask: string, body: unknown) =>
    api(pier, pier.adminToken, 'PATCH', `/api/2.0/database/instances/ha-life?update_mask=${mask}`, body);
  assert.equal((await patch('stopped', { stopped: true })).status, 200);
  await eventually(
    async () => ((await getInstance(pier, 'ha-life')).state === 'STOPPED' ? true : undefined),
    60_000,
  );
  const refused = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances/ha-life/failover');
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error_code, 'INVALID_STATE');
  assert.deepEqual(await writableNodes(pier, uid), [], 'every node stopped');

  assert.equal((await patch('stopped', { stopped: false })).status, 200);
  await streamingInstance(pier, 'ha-life', 2);
  assert.equal((await patch('capacity', { capacity: 'CU_2' })).status, 200);
  const resized = await streamingInstance(pier, 'ha-life', 2);
  assert.equal(resized.capacity, 'CU_2');
  assert.deepEqual(await writableNodes(pier, uid), [0]);

  // The secondary kept its data (it was never re-cloned) and follows the primary.
  const pg = await import('pg');
  const secondary = new pg.default.Client({
    host: nodePaths(pier, uid, 1).socketDir,
    user: 'postgres',
    database: 'postgres',
  });
  await secondary.connect();
  const { rows } = await secondary.query('SELECT count(*)::int AS n FROM kept');
  const settings = await secondary.query("SELECT setting FROM pg_settings WHERE name = 'max_connections'");
  await secondary.end();
  assert.equal(rows[0].n, 100);
  assert.equal(settings.rows[0].setting, '500', 'the secondary was resized too');

  // The CLI verb fails over and waits; node 1 is then the one writable primary.
  const env = {
    DATABRICKS_HOST: pier.apiUrl,
    DATABRICKS_TOKEN: pier.adminToken,
    DATABRICKS_CONFIG_PROFILE: '',
  };
  const failover = await runPier(['database', 'failover-database-instance', 'ha-life'], env);
  assert.equal(failover.code, 0, failover.stderr);
  assert.equal(JSON.parse(failover.stdout).state, 'AVAILABLE');
  assert.deepEqual(await writableNodes(pier, uid), [1]);
  await streamingInstance(pier, 'ha-life', 2);

  // A secondary killed: writes do not wait for it; it is restarted and streams again.
  process.kill(await postmasterPid(pier, uid, 0), 'SIGKILL');
  const writer = await proxyClient(pier, host as string, 'ha-life');
  await writer.query('INSERT INTO kept VALUES (101)');
  await writer.end();
  await streamingInstance(pier, 'ha-life', 2);

  // Readable secondaries turned on later: a read_only_dns of its own, served at once.
  const enabled = await patch('enable_readable_secondaries', { enable_readable_secondaries: true });
  assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
  assert.match(String(enabled.body.read_only_dns), /^127\.1\.\d+\.\d+$/);
  const readOnly = await eventually(async () => {
    const client = await proxyClient(pier, enabled.body.read_only_dns as string, 'ha-life').catch(
      () => undefined,
    );
    return client;
  }, 20_000);
  assert.equal((await readOnly.query('SELECT pg_is_in_recovery() AS r')).rows[0].r, true);
  await readOnly.end();
  const refusedShrink = await patch('node_count', { node_count: 1 });
  assert.equal(refusedShrink.status, 400, 'readable secondaries need a secondary');

  assert.equal(
    (
      await patch('node_count,enable_readable_secondaries', {
        node_count: 1,
        enable_readable_secondaries: false,
      })
    ).status,
    200,
  );
  await streamingInstance(pier, 'ha-life', 1);
  assert.deepEqual(await writableNodes(pier, uid), [1]);
  const reader = await proxyClient(pier, host as string, 'ha-life');
  assert.equal((await reader.query('SELECT count(*)::int AS n FROM kept')).rows[0].n, 101);
  await reader.end();
  const noSecondary = await api(
    pier,
    pier.adminToken,
    'POST',
    '/api/2.0/database/instances/ha-life/failover',
  );
  assert.equal(noSecondary.status, 400);
  assert.match(String(noSecondary.body.message), /no secondary/);
});
