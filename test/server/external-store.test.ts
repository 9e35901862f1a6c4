import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { api, eventually, removePier, runPier, startPier, tempDataDir } from '../helpers/pier.js';
import { startExternalPostgres } from '../helpers/postgres.js';

test('--store-url keeps control-plane state in an external Postgres', async () => {
  // A Postgres of our own, standing in for the external one.
  const external = await startExternalPostgres('control_plane');
  const storeUrl = external.url;

  const pierDir = await tempDataDir();
  let pier = await startPier({ dataDir: pierDir, env: { PIER_STORE_URL: storeUrl } });
  assert.equal(existsSync(join(pierDir, 'store')), false, 'no embedded store');
  await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', { name: 'external-db' });
  await eventually(async () => {
    const { body } = await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances/external-db');
    return body.state === 'AVAILABLE' ? true : undefined;
  });

  // The state is in the external database…
  const check = await external.connect();
  const { rows } = await check.query(`SELECT name, state FROM instances`);
  assert.deepEqual(rows, [{ name: 'external-db', state: 'AVAILABLE' }]);
  // …with no private signing key in it: those are sealed by the master key in the data dir.
  const keys = await check.query('SELECT private_jwk, sealed_private_jwk::text AS sealed FROM signing_keys');
  assert.ok(keys.rows.length > 0);
  for (const row of keys.rows) {
    assert.equal(row.private_jwk, null);
    assert.doesNotMatch(row.sealed, /"d":/);
  }
  const migrations = await check.query('SELECT max(version)::int AS v FROM pier_migrations');
  assert.ok(migrations.rows[0].v >= 3);
  await check.end();

  // …and a restarted Pier picks it up.
  await pier.stop();
  pier = await startPier({ dataDir: pierDir, args: ['--store-url', storeUrl] });
  const { body } = await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances/external-db');
  assert.equal(body.name, 'external-db');

  // A second node must bring the store's master key: without it, it refuses to start.
  const keylessDir = await tempDataDir();
  const keyless = await runPier(['up', '--data-dir', keylessDir, '--store-url', storeUrl]);
  assert.equal(keyless.code, 1);
  assert.match(keyless.stderr, /sealed with master key [0-9a-f]+, but there is no master key/);
  await rm(keylessDir, { recursive: true, force: true });

  // A second Pier node on the same store runs its own instances and leaves the first one's alone.
  const masterKey = (await readFile(join(pierDir, 'keys', 'master.key'), 'utf8')).trim();
  const second = await startPier({ args: ['--store-url', storeUrl], env: { PIER_MASTER_KEY: masterKey } });
  const token = pier.adminToken; // one workspace: the first node's admin token works on both
  await api(second, token, 'POST', '/api/2.0/database/instances', { name: 'second-node-db' });
  await eventually(async () => {
    const { body: row } = await api(second, token, 'GET', '/api/2.0/database/instances/second-node-db');
    return row.state === 'AVAILABLE' ? true : undefined;
  });
  const uidOf = async (name: string) =>
    (await api(pier, token, 'GET', `/api/2.0/database/instances/${name}`)).body.uid as string;
  assert.ok(existsSync(join(second.dataDir, 'instances', await uidOf('second-node-db'))));
  assert.equal(
    existsSync(join(second.dataDir, 'instances', await uidOf('external-db'))),
    false,
    'not copied to the second node',
  );
  assert.equal(
    existsSync(join(pierDir, 'instances', await uidOf('second-node-db'))),
    false,
    'not copied to the first node',
  );
  const listed = await api(pier, token, 'GET', '/api/2.0/database/instances');
  assert.deepEqual(
    (listed.body.database_instances as { name: string }[]).map((i) => i.name),
    ['external-db', 'second-node-db'],
  );
  // A key rotated through one node verifies on the other at once (NOTIFY; the old poll took 10 s).
  const rotated = await api(second, token, 'POST', '/api/2.0/pier/signing-keys/rotate');
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
  const rotatedAt = Date.now();
  await eventually(
    async () => {
      const { body: jwks } = await api(pier, token, 'GET', '/oidc/v1/keys');
      return (jwks.keys as { kid: string }[]).some((key) => key.kid === rotated.body.kid) ? true : undefined;
    },
    1000,
    'the first node to serve the key rotated on the second',
  );
  assert.ok(Date.now() - rotatedAt < 1000);
  // A change made through the first node's API is carried out by the node that runs the instance.
  await api(pier, token, 'PATCH', '/api/2.0/database/instances/second-node-db?update_mask=stopped', {
    stopped: true,
  });
  await eventually(
    async () => {
      const { body: row } = await api(pier, token, 'GET', '/api/2.0/database/instances/second-node-db');
      return row.state === 'STOPPED' ? true : undefined;
    },
    20_000,
    'the second node to stop its instance',
  );
  await removePier(second);
  await removePier(pier);
  await external.remove();
});
