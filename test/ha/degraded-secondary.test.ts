import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { api, eventually, type PierProcess, removePier, startPier } from '../helpers/pier.js';
import {
  getInstance,
  nodePaths,
  postmasterPid,
  proxyClient,
  streamingInstance,
  writableNodes,
} from './helpers.js';

/**
 * A secondary that cannot serve: its replay falls behind (no reads routed to
 * it), or it dies in the middle of a failover (nothing promoted, the old
 * primary restarts in place). One instance for both, in this order.
 */
let pier: PierProcess;

before(async () => {
  pier = await startPier({
    env: {
      PIER_READ_LAG_LIMIT_SECONDS: '1',
      // Each failover step waits 1.5 s, so the secondary can die between the fence and the choice.
      PIER_FAILOVER_STEP_DELAY_MS: '1500',
    },
  });
  const created = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', {
    name: 'ha-degraded',
    node_count: 2,
    enable_readable_secondaries: true,
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
});

after(async () => {
  if (pier) await removePier(pier);
});

test('a readable secondary whose replay falls behind the limit gets no new reader until it catches up', async () => {
  const instance = await streamingInstance(pier, 'ha-degraded', 2);
  const readOnly = instance.read_only_dns as string;
  const writer = await proxyClient(pier, instance.read_write_dns as string, 'ha-degraded');
  await writer.query('CREATE TABLE ticks (id int)');
  const reader = await proxyClient(pier, readOnly, 'ha-degraded');
  await reader.end();

  // Replay paused on the secondary; it still receives and flushes, so commits go on.
  const secondary = new pg.Client({
    host: nodePaths(pier, instance.uid, 1).socketDir,
    user: 'postgres',
    database: 'postgres',
  });
  await secondary.connect();
  await secondary.query('SELECT pg_wal_replay_pause()');
  let id = 0;
  const refused = await eventually(
    async () => {
      await writer.query('INSERT INTO ticks VALUES ($1)', [++id]);
      await sleep(200);
      const client = await proxyClient(pier, readOnly, 'ha-degraded').catch((error: Error) => error);
      if (client instanceof Error) return client as Error & { code?: string };
      await client.end();
      return undefined;
    },
    30_000,
    'reads refused on the lagging secondary',
  );
  assert.equal(refused.code, '57P03');
  assert.match(
    refused.message,
    /No readable secondary of database instance 'ha-degraded' is streaming and caught up/,
  );
  assert.match(pier.output(), /ha-degraded: no reads routed to node\(s\) 1: replay is behind/);
  // Still synchronous: it has every commit, only not applied yet.
  assert.equal((await getInstance(pier, 'ha-degraded')).effective_node_count, 2);

  await secondary.query('SELECT pg_wal_replay_resume()');
  await secondary.end();
  const back = await eventually(
    async () => proxyClient(pier, readOnly, 'ha-degraded').catch(() => undefined),
    30_000,
    'reads served again once caught up',
  );
  const { rows } = await back.query<{ n: number }>('SELECT count(*)::int AS n FROM ticks');
  assert.equal(rows[0].n, id, 'caught up: every row written meanwhile');
  await back.end();
  await writer.end();
});

test('no secondary left to promote after the fence: the fence is lifted and the old primary restarts in place', async () => {
  const { uid, read_write_dns } = await streamingInstance(pier, 'ha-degraded', 2);
  const host = read_write_dns as string;
  let client = await proxyClient(pier, host, 'ha-degraded');
  await client.query('CREATE TABLE ledger (id int PRIMARY KEY)');
  await client.query('INSERT INTO ledger SELECT generate_series(1, 500)');
  await client.end();

  process.kill(await postmasterPid(pier, uid, 0), 'SIGKILL');
  await eventually(
    async () => ((await getInstance(pier, 'ha-degraded')).state === 'FAILING_OVER' ? true : undefined),
    20_000,
    'FAILING_OVER',
  );
  // The secondary dies too, before it can be chosen: nothing may be promoted.
  process.kill(await postmasterPid(pier, uid, 1), 'SIGKILL');

  await eventually(
    async () => ((await writableNodes(pier, uid)).join() === '0' ? true : undefined),
    30_000,
    'node 0 writable again',
  );
  assert.match(pier.output(), /No secondary of 'ha-degraded' could take over/);
  assert.doesNotMatch(pier.output(), /node 1 is the primary/);

  // Node 0 kept its data and its place; node 1 streams from it again.
  await streamingInstance(pier, 'ha-degraded', 2, 60_000);
  assert.deepEqual(await writableNodes(pier, uid), [0], 'exactly one writable primary, the old one');
  client = await proxyClient(pier, host, 'ha-degraded');
  const { rows } = await client.query<{ count: string }>('SELECT count(*) FROM ledger');
  assert.equal(rows[0].count, '500');
  await client.query('INSERT INTO ledger VALUES (501)');
  await client.end();
  const instance = await getInstance(pier, 'ha-degraded');
  assert.equal(instance.state, 'AVAILABLE');
  assert.equal(instance.message, undefined, JSON.stringify(instance));
  if (process.env.HA_DEBUG) console.log(pier.output());
});
