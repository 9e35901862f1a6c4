import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { api, eventually, type PierProcess, removePier, startPier } from '../helpers/pier.js';
import { getInstance, postmasterPid, proxyClient, streamingInstance, writableNodes } from './helpers.js';

const piers: PierProcess[] = [];

after(async () => {
  for (const pier of piers) await removePier(pier);
});

/**
 * Inserts one row per commit through the proxy until stopped, reconnecting
 * after each failure; remembers every id whose COMMIT was acknowledged and
 * the longest time without one.
 */
function writeLoad(pier: PierProcess, host: string, name: string, firstId = 1) {
  const acknowledged: number[] = [];
  let longestGapMs = 0;
  let stopped = false;
  let lastError: Error | undefined;
  const done = (async () => {
    let client: pg.Client | undefined;
    let lastAck = performance.now();
    for (let id = firstId; !stopped; id++) {
      try {
        client ??= await proxyClient(pier, host, name);
        await client.query('INSERT INTO ledger (id) VALUES ($1)', [id]);
        acknowledged.push(id);
        const now = performance.now();
        longestGapMs = Math.max(longestGapMs, now - lastAck);
        lastAck = now;
      } catch (error) {
        lastError = error as Error;
        await client?.end().catch(() => {});
        client = undefined;
        await sleep(50);
      }
    }
    await client?.end().catch(() => {});
  })();
  return {
    acknowledged,
    gapMs: () => longestGapMs,
    lastError: () => lastError,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

async function ledgerIds(pier: PierProcess, host: string, name: string): Promise<Set<number>> {
  const client = await proxyClient(pier, host, name);
  const { rows } = await client.query<{ id: number }>('SELECT id FROM ledger');
  await client.end();
  return new Set(rows.map((row) => row.id));
}

async function createHaInstance(pier: PierProcess, name: string, nodes = 2) {
  const created = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', {
    name,
    node_count: nodes,
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const instance = await streamingInstance(pier, name, nodes);
  const client = await proxyClient(pier, instance.read_write_dns as string, name);
  await client.query('CREATE TABLE ledger (id int PRIMARY KEY)');
  await client.end();
  return { uid: instance.uid, host: instance.read_write_dns as string };
}

test('kill -9 of the primary under write load (3 nodes): failover keeps every acknowledged commit', async () => {
  const pier = await startPier();
  piers.push(pier);
  const { uid, host } = await createHaInstance(pier, 'ha-crash', 3);
  const load = writeLoad(pier, host, 'ha-crash');
  await eventually(async () => (load.acknowledged.length >= 200 ? true : undefined), 30_000, 'writes');

  const killedAt = performance.now();
  process.kill(await postmasterPid(pier, uid, 0), 'SIGKILL');
  const before = load.acknowledged.length;
  await eventually(
    async () => (load.acknowledged.length >= before + 100 ? true : undefined),
    30_000,
    'writes after failover',
  );
  const downtimeMs = load.gapMs();
  await load.stop();
  console.log(
    `failover after kill -9: ${downtimeMs.toFixed(0)} ms without an acknowledged commit (${(performance.now() - killedAt).toFixed(0)} ms to 100 more)`,
  );

  const [promoted, ...others] = await writableNodes(pier, uid);
  assert.ok(promoted === 1 || promoted === 2, `a secondary was promoted (writable: ${promoted})`);
  assert.deepEqual(others, [], 'exactly one writable primary');
  const stored = await ledgerIds(pier, host, 'ha-crash');
  const lost = load.acknowledged.filter((id) => !stored.has(id));
  assert.deepEqual(lost, [], `${load.acknowledged.length} acknowledged commits, none lost`);
  assert.ok(downtimeMs < 15_000, `writes resumed within 15 s (took ${downtimeMs.toFixed(0)} ms)`);

  // The old primary comes back as a secondary, re-cloned from the new one; the other
  // secondary follows the new primary.
  const t0 = performance.now();
  await streamingInstance(pier, 'ha-crash', 3);
  console.log(`re-cloned the old primary in ${(performance.now() - t0).toFixed(0)} ms`);

  // A requested failover moves the primary again, without losing a commit.
  const again = writeLoad(pier, host, 'ha-crash', 1_000_000);
  await eventually(async () => (again.acknowledged.length >= 50 ? true : undefined), 30_000, 'writes').catch(
    (error) => {
      throw new Error(`${error.message}: ${again.lastError()?.message}\n${pier.output().slice(-3000)}`);
    },
  );
  const requested = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances/ha-crash/failover');
  assert.equal(requested.status, 200, JSON.stringify(requested.body));
  await eventually(
    async () => ((await writableNodes(pier, uid)).join() === '0' ? true : undefined),
    30_000,
    'node 0 primary',
  );
  const moreBefore = again.acknowledged.length;
  await eventually(
    async () => (again.acknowledged.length >= moreBefore + 50 ? true : undefined),
    30_000,
    'writes',
  );
  await again.stop();
  const after = await ledgerIds(pier, host, 'ha-crash');
  assert.deepEqual(
    again.acknowledged.filter((id) => !after.has(id)),
    [],
  );
  await streamingInstance(pier, 'ha-crash', 3);
  assert.equal((await writableNodes(pier, uid)).length, 1);
  if (process.env.HA_DEBUG) console.log(pier.output());
});

test('kill -9 of Pier in the middle of a failover: the next Pier finishes it, one primary', async () => {
  // Each failover step waits 1.5 s, so Pier can be killed between them.
  const slow = await startPier({ env: { PIER_FAILOVER_STEP_DELAY_MS: '1500' } });
  piers.push(slow);
  const { uid, host } = await createHaInstance(slow, 'ha-resume');
  const client = await proxyClient(slow, host, 'ha-resume');
  await client.query('INSERT INTO ledger SELECT generate_series(1, 1000)');
  await client.end();

  process.kill(await postmasterPid(slow, uid, 0), 'SIGKILL');
  await eventually(
    async () => ((await getInstance(slow, 'ha-resume')).state === 'FAILING_OVER' ? true : undefined),
    20_000,
  );
  await slow.kill();
  assert.ok((await writableNodes(slow, uid)).length <= 1, 'never two writable primaries');

  const next = await startPier({ dataDir: slow.dataDir });
  piers.splice(piers.indexOf(slow), 1, next);
  await streamingInstance(next, 'ha-resume', 2, 90_000);
  assert.deepEqual(await writableNodes(next, uid), [1]);
  assert.equal((await ledgerIds(next, host, 'ha-resume')).size, 1000);

  // A clean stop (every node shut down) and start is no failover: node 1 stays the primary.
  await next.stop();
  const third = await startPier({ dataDir: slow.dataDir });
  piers.splice(piers.indexOf(next), 1, third);
  await streamingInstance(third, 'ha-resume', 2, 90_000);
  assert.deepEqual(await writableNodes(third, uid), [1]);
  assert.doesNotMatch(third.output(), /failing over/);
});
