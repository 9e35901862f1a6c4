import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { api, type PierProcess, removePier, startPier } from '../helpers/pier.js';
import { lro, PG } from './autoscaling.js';

const ENDPOINT = 'projects/app/branches/production/endpoints/primary';

let pier: PierProcess;
before(async () => {
  // Credentials that live 4 s: the pool has to fetch fresh ones while it runs.
  pier = await startPier({ args: ['--credential-ttl', '4', '--min-suspend-timeout', '1'] });
  await lro(pier, pier.adminToken, 'POST', 'projects?project_id=app', {
    spec: { default_endpoint_settings: { suspend_timeout_duration: '2s' } },
  });
});
after(async () => {
  if (pier) await removePier(pier);
});

test('@databricks/lakebase createLakebasePool() from the environment alone: across a token expiry and a suspend and wake', async () => {
  const { body: endpoint } = await api(pier, pier.adminToken, 'GET', `${PG}/${ENDPOINT}`);
  assert.ok(((endpoint.status as Record<string, unknown>).hosts as { host: string }).host);
  // The endpoint's host is a loopback IP; the pg 8.18 this package pins checks an IP host's
  // certificate against "localhost" (fixed in later pg). So connect by name: the proxy routes
  // by the credential, which names this one endpoint (docs/autoscaling.md).
  const host = 'localhost';
  const child = spawn(process.execPath, [fileURLToPath(new URL('./lakebase-client.js', import.meta.url))], {
    env: {
      PATH: process.env.PATH,
      LAKEBASE_ENDPOINT: ENDPOINT,
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
  });
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
