import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { initCluster, startCluster, stopCluster } from '../../src/engine/local/cluster.js';
import { handToPostgres, preparePostgresRuntime } from '../../src/engine/local/runtime.js';
import { api, eventually, removePier, startPier, tempDataDir } from '../helpers/pier.js';

test('--store-url keeps control-plane state in an external Postgres', async () => {
  // A Postgres of our own, standing in for the external one.
  const root = await tempDataDir('pier-external-store-');
  const runtime = await preparePostgresRuntime(join(root, 'runtime'));
  await handToPostgres(runtime, root, 0o755);
  const dataDir = join(root, 'pg');
  await mkdir(dataDir);
  await handToPostgres(runtime, dataDir, 0o700);
  await initCluster(runtime, dataDir);
  const socketDir = join(root, 'sock');
  await startCluster(runtime, { dataDir, socketDir, logFile: join(root, 'pg.log') });
  const admin = new pg.Client({ host: socketDir, user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query('CREATE DATABASE control_plane');
  await admin.end();
  const storeUrl = `postgresql://postgres@localhost/control_plane?host=${encodeURIComponent(socketDir)}`;

  const pierDir = await tempDataDir();
  let pier = await startPier({ dataDir: pierDir, env: { PIER_STORE_URL: storeUrl } });
  assert.equal(existsSync(join(pierDir, 'store')), false, 'no embedded store');
  await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', { name: 'external-db' });
  await eventually(async () => {
    const { body } = await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances/external-db');
    return body.state === 'AVAILABLE' ? true : undefined;
  });

  // The state is in the external database…
  const check = new pg.Client({ host: socketDir, user: 'postgres', database: 'control_plane' });
  await check.connect();
  const { rows } = await check.query(`SELECT name, state FROM instances`);
  assert.deepEqual(rows, [{ name: 'external-db', state: 'AVAILABLE' }]);
  const migrations = await check.query('SELECT max(version)::int AS v FROM pier_migrations');
  assert.ok(migrations.rows[0].v >= 3);
  await check.end();

  // …and a restarted Pier picks it up.
  await pier.stop();
  pier = await startPier({ dataDir: pierDir, args: ['--store-url', storeUrl] });
  const { body } = await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances/external-db');
  assert.equal(body.name, 'external-db');
  await removePier(pier);
  await stopCluster(dataDir);
  await rm(root, { recursive: true, force: true });
});
