import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createPool } from '../../src/client/index.js';
import { api, eventually, type PierProcess, removePier, startPier } from '../helpers/pier.js';
import { connectEndpoint, lro, PG } from './autoscaling.js';

const ADMIN = 'admin@pier.local';
const ENDPOINT = 'projects/idle/branches/production/endpoints/primary';
const APP_ENDPOINT = 'projects/app/branches/production/endpoints/primary';

/** The uid of the instance behind an endpoint's host (its data directory's name). */
function postmasterPid(pier: PierProcess, uid: string): number | undefined {
  const file = join(pier.dataDir, 'instances', uid, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number.parseInt(readFileSync(file, 'utf8').split('\n')[0], 10);
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

describe('scale to zero', () => {
  let pier: PierProcess;
  let uid: string;
  before(async () => {
    // Credentials that live 4 s: pools have to fetch fresh ones while they run.
    pier = await startPier({ args: ['--credential-ttl', '4', '--min-suspend-timeout', '1'] });
    await lro(pier, pier.adminToken, 'POST', 'projects?project_id=app', {
      spec: { default_endpoint_settings: { suspend_timeout_duration: '2s' } },
    });
    await lro(pier, pier.adminToken, 'POST', 'projects?project_id=idle', {
      spec: {
        default_endpoint_settings: {
          autoscaling_limit_min_cu: 0.5,
          autoscaling_limit_max_cu: 2,
          suspend_timeout_duration: '2s',
        },
      },
    });
    const client = await connectEndpoint(pier, pier.adminToken, ENDPOINT, ADMIN);
    await client.query('CREATE TABLE kept (id int); INSERT INTO kept SELECT generate_series(1, 42)');
    const settings = await client.query(
      "SELECT current_setting('max_connections') AS max_connections, current_setting('data_directory') AS dir",
    );
    uid = settings.rows[0].dir.split('/').pop();
    // 2 CU: about 419 connections, as Databricks documents.
    assert.equal(settings.rows[0].max_connections, '419');
    await client.end();
  });
  after(async () => {
    if (pier) await removePier(pier);
  });

  test('an endpoint idle past its timeout suspends: IDLE, no Postgres process left', async () => {
    await eventually(
      async () => {
        const { body } = await api(pier, pier.adminToken, 'GET', `${PG}/${ENDPOINT}`);
        return (body.status as Record<string, unknown>).current_state === 'IDLE' ? true : undefined;
      },
      20_000,
      'endpoint IDLE',
    );
    assert.equal(postmasterPid(pier, uid), undefined);
  });

  test('a connection wakes it, waits until it is ready, and finds the data intact', async () => {
    const started = performance.now();
    const client = await connectEndpoint(pier, pier.adminToken, ENDPOINT, ADMIN);
    const { rows } = await client.query('SELECT count(*)::int AS n FROM kept');
    const wakeMs = performance.now() - started;
    assert.equal(rows[0].n, 42);
    assert.ok(postmasterPid(pier, uid));
    console.log(`wake-up to first row: ${wakeMs.toFixed(0)} ms`);
    // An open session keeps it awake past the timeout.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1);
    await client.end();
    const { body } = await api(pier, pier.adminToken, 'GET', `${PG}/${ENDPOINT}`);
    assert.ok((body.status as Record<string, unknown>).last_active_time);
  });

  test('clients connecting at once while it is suspended all get in', async () => {
    await eventually(
      async () => (postmasterPid(pier, uid) === undefined ? true : undefined),
      20_000,
      'suspended again',
    );
    const clients = await Promise.all(
      Array.from({ length: 5 }, () => connectEndpoint(pier, pier.adminToken, ENDPOINT, ADMIN)),
    );
    for (const client of clients) {
      assert.equal((await client.query('SELECT count(*)::int AS n FROM kept')).rows[0].n, 42);
      await client.end();
    }
  });

  test('a disabled endpoint does not wake; enabled again, it serves', async () => {
    await lro(pier, pier.adminToken, 'PATCH', `${ENDPOINT}?update_mask=spec.disabled`, {
      spec: { disabled: true },
    });
    assert.equal(postmasterPid(pier, uid), undefined);
    await assert.rejects(
      connectEndpoint(pier, pier.adminToken, ENDPOINT, ADMIN),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, '57P03');
        return true;
      },
    );
    await lro(pier, pier.adminToken, 'PATCH', `${ENDPOINT}?update_mask=spec.disabled,spec.suspension`, {
      spec: { disabled: false, no_suspension: true },
    });
    const client = await connectEndpoint(pier, pier.adminToken, ENDPOINT, ADMIN);
    assert.equal((await client.query('SELECT count(*)::int AS n FROM kept')).rows[0].n, 42);
    await client.end();
    const { body } = await api(pier, pier.adminToken, 'GET', `${PG}/${ENDPOINT}`);
    assert.equal((body.status as Record<string, unknown>).no_suspension, true);
  });

  test('@databricks/lakebase createLakebasePool() from the environment alone: across a token expiry and a suspend and wake', async () => {
    const { body: endpoint } = await api(pier, pier.adminToken, 'GET', `${PG}/${APP_ENDPOINT}`);
    assert.ok(((endpoint.status as Record<string, unknown>).hosts as { host: string }).host);
    // The endpoint's host is a loopback IP; the pg 8.18 this package pins checks an IP host's
    // certificate against "localhost" (fixed in later pg). So connect by name: the proxy routes
    // by the credential, which names this one endpoint (docs/autoscaling.md).
    const host = 'localhost';
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL('../../../test/postgres/fixtures/lakebase-client.mjs', import.meta.url))],
      {
        env: {
          PATH: process.env.PATH,
          LAKEBASE_ENDPOINT: APP_ENDPOINT,
          PGHOST: host,
          PGPORT: String(pier.proxyPort),
          PGDATABASE: 'databricks_postgres',
          PGUSER: 'admin@pier.local',
          PGSSLMODE: 'require',
          DATABRICKS_HOST: pier.apiUrl,
          DATABRICKS_TOKEN: pier.adminToken,
          NODE_EXTRA_CA_CERTS: pier.caCertPath,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    await new Promise((resolve) => child.once('exit', resolve));
    const seen = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
    assert.equal(seen.error, undefined, `${seen.error}\n${err}`);
    assert.equal(seen.user, 'admin@pier.local');
    assert.equal(seen.afterExpiry, 2);
    assert.equal(seen.suspended, true);
    assert.equal(seen.afterWake, 2);
    assert.equal(seen.stateAfterWake, 'ACTIVE');
    console.log(`lakebase pool: first query after suspend took ${seen.wakeMs} ms`);
  });

  test('pier/client createPool({ endpoint }): the Autoscaling form', async () => {
    const pool = createPool({
      endpoint: APP_ENDPOINT,
      workspace: { host: pier.apiUrl, token: pier.adminToken },
      sslRootCert: pier.caCertPath,
      port: pier.proxyPort,
      database: 'databricks_postgres',
    });
    try {
      assert.equal((await pool.query('SELECT current_user AS u')).rows[0].u, ADMIN);
      assert.ok(pool.credentials);
    } finally {
      await pool.end();
    }
  });
});
