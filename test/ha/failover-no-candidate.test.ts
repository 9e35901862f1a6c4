import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { api, eventually, type PierProcess, removePier, startPier } from '../helpers/pier.js';
import { getInstance, postmasterPid, proxyClient, streamingInstance, writableNodes } from './helpers.js';

let pier: PierProcess | undefined;

after(async () => {
  if (pier) await removePier(pier);
});

test('no secondary left to promote after the fence: the fence is lifted and the old primary restarts in place', async () => {
  // Each failover step waits 1.5 s, so the secondary can die between the fence and the choice.
  pier = await startPier({ env: { PIER_FAILOVER_STEP_DELAY_MS: '1500' } });
  const target = pier;
  const created = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', {
    name: 'ha-alone',
    node_count: 2,
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const { uid, read_write_dns } = await streamingInstance(pier, 'ha-alone', 2);
  const host = read_write_dns as string;
  let client = await proxyClient(pier, host, 'ha-alone');
  await client.query('CREATE TABLE ledger (id int PRIMARY KEY)');
  await client.query('INSERT INTO ledger SELECT generate_series(1, 500)');
  await client.end();

  process.kill(await postmasterPid(pier, uid, 0), 'SIGKILL');
  await eventually(
    async () => ((await getInstance(target, 'ha-alone')).state === 'FAILING_OVER' ? true : undefined),
    20_000,
    'FAILING_OVER',
  );
  // The secondary dies too, before it can be chosen: nothing may be promoted.
  process.kill(await postmasterPid(pier, uid, 1), 'SIGKILL');

  await eventually(
    async () => ((await writableNodes(target, uid)).join() === '0' ? true : undefined),
    30_000,
    'node 0 writable again',
  );
  assert.match(pier.output(), /No secondary of 'ha-alone' could take over/);
  assert.doesNotMatch(pier.output(), /node 1 is the primary/);

  // Node 0 kept its data and its place; node 1 streams from it again.
  await streamingInstance(pier, 'ha-alone', 2, 60_000);
  assert.deepEqual(await writableNodes(pier, uid), [0], 'exactly one writable primary, the old one');
  client = await proxyClient(pier, host, 'ha-alone');
  const { rows } = await client.query<{ count: string }>('SELECT count(*) FROM ledger');
  assert.equal(rows[0].count, '500');
  await client.query('INSERT INTO ledger VALUES (501)');
  await client.end();
  const instance = await getInstance(pier, 'ha-alone');
  assert.equal(instance.state, 'AVAILABLE');
  assert.equal(instance.message, undefined, JSON.stringify(instance));
  if (process.env.HA_DEBUG) console.log(pier.output());
});
