import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { api, eventually, removePier, runPier, startPier, tempDataDir } from '../helpers/pier.js';

test('--tls-cert/--tls-key make the proxy present your certificate; a lone flag or a busy port is a clear error', async () => {
  // Pier A's CA and server certificate stand in for "your own".
  const a = await startPier();
  const tlsDir = join(a.dataDir, 'tls');
  const b = await startPier({
    args: ['--tls-cert', join(tlsDir, 'server.crt'), '--tls-key', join(tlsDir, 'server.key')],
  });
  const status = JSON.parse((await runPier(['status', '--data-dir', b.dataDir, '-o', 'json'])).stdout);
  assert.equal(status.caCertPath, undefined, 'no Pier-made CA when the certificate is yours');

  await api(b, b.adminToken, 'POST', '/api/2.0/database/instances', { name: 'own-cert' });
  await eventually(async () =>
    (await api(b, b.adminToken, 'GET', '/api/2.0/database/instances/own-cert')).body.state === 'AVAILABLE'
      ? true
      : undefined,
  );
  const { body } = await api(b, b.adminToken, 'POST', '/api/2.0/database/credentials', {
    instance_names: ['own-cert'],
  });
  const client = new pg.Client({
    host: '127.0.0.1',
    port: b.proxyPort,
    user: 'admin@pier.local',
    password: body.token as string,
    database: 'postgres',
    // Verifies only against A's CA: B must be presenting the given certificate.
    ssl: { ca: readFileSync(join(tlsDir, 'ca.crt'), 'utf8'), servername: 'localhost' },
  });
  await client.connect();
  assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
  await client.end();
  await removePier(b);

  const loneDir = await tempDataDir();
  const lone = await runPier([
    'up',
    '--data-dir',
    loneDir,
    '--api-port',
    '0',
    '--proxy-port',
    '0',
    '--tls-cert',
    join(tlsDir, 'server.crt'),
  ]);
  assert.equal(lone.code, 1);
  assert.match(lone.stderr, /--tls-cert and --tls-key go together/);

  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = (busy.address() as { port: number }).port;
  const takenDir = await tempDataDir();
  const taken = await runPier([
    'up',
    '--data-dir',
    takenDir,
    '--api-port',
    '0',
    '--proxy-port',
    String(port),
  ]);
  busy.close();
  assert.equal(taken.code, 1);
  assert.match(taken.stderr, new RegExp(`Port ${port} on 127\\.0\\.0\\.1 is already in use.*--proxy-port`));
  // A start that failed left no Postgres running.
  for (const dir of [loneDir, takenDir]) {
    assert.equal(existsSync(join(dir, 'store', 'postmaster.pid')), false, `no store server left in ${dir}`);
    await rm(dir, { recursive: true, force: true });
  }
  await removePier(a);
});

test('--proxy-max-connections-per-address caps one address with 53300; a cap must be a positive integer', async () => {
  const zeroDir = await tempDataDir();
  const zero = await runPier(['up', '--data-dir', zeroDir, '--proxy-max-connections', '0']);
  assert.equal(zero.code, 1);
  assert.match(zero.stderr, /"0" must be a positive integer/);
  await rm(zeroDir, { recursive: true, force: true });

  const pier = await startPier({ args: ['--proxy-max-connections-per-address', '1'] });
  // A connection that has not sent a byte holds the address's one place.
  const held = connect({ host: '127.0.0.1', port: pier.proxyPort });
  await once(held, 'connect');
  const client = new pg.Client({
    host: '127.0.0.1',
    port: pier.proxyPort,
    user: 'admin@pier.local',
    password: 'whatever',
    database: 'postgres',
    ssl: { rejectUnauthorized: false },
  });
  client.on('error', () => {});
  const error = (await client.connect().then(
    () => undefined,
    (failure: Error & { code?: string; hint?: string }) => failure,
  )) as (Error & { code?: string; hint?: string }) | undefined;
  assert.equal(error?.code, '53300');
  assert.match(error!.message, /127\.0\.0\.1 has 1 connection open, the limit for one address/);
  assert.match(error!.hint ?? '', /--proxy-max-connections-per-address/);
  held.destroy();
  await removePier(pier);
});
