import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import { createPool, oauthM2MSource } from 'pier/client';
import { availableInstance, connectThroughProxy } from '../helpers/access.js';
import { api, type PierProcess, removePier, startPier } from '../helpers/pier.js';

const SCIM = '/api/2.0/preview/scim/v2';
const INSTANCE = 'm2m-db';
const REPO = new URL('../../../', import.meta.url);

let pier: PierProcess;
let home: string;
let sp: { id: string; applicationId: string };
let secret: string;

/** A service principal with CAN_USE on an instance and one secret. */
async function servicePrincipal(displayName: string, instance?: string) {
  const created = await api(pier, pier.adminToken, 'POST', `${SCIM}/ServicePrincipals`, { displayName });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const principal = created.body as { id: string; applicationId: string };
  if (instance) {
    const granted = await api(
      pier,
      pier.adminToken,
      'PATCH',
      `/api/2.0/permissions/database-instances/${instance}`,
      {
        access_control_list: [
          { service_principal_name: principal.applicationId, permission_level: 'CAN_USE' },
        ],
      },
    );
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
  }
  const made = await api(
    pier,
    pier.adminToken,
    'POST',
    `/api/2.0/accounts/servicePrincipals/${principal.id}/credentials/secrets`,
    {},
  );
  assert.equal(made.status, 200, JSON.stringify(made.body));
  return { ...principal, secret: made.body.secret as string };
}

/** POST /oidc/v1/token from a chosen loopback address (the throttle counts per address). */
function tokenRequest(
  form: Record<string, string>,
  options: { basic?: [string, string]; from?: string } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Record<string, unknown>; ms: number }> {
  const url = new URL('/oidc/v1/token', pier.apiUrl);
  const body = new URLSearchParams(form).toString();
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        localAddress: options.from ?? '127.0.0.1',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          ...(options.basic
            ? { authorization: `Basic ${Buffer.from(options.basic.join(':')).toString('base64')}` }
            : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: JSON.parse(text),
            ms: Number(process.hrtime.bigint() - started) / 1e6,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const grant = { grant_type: 'client_credentials', scope: 'all-apis' };

before(async () => {
  pier = await startPier();
  home = await mkdtemp(join(tmpdir(), 'pier-m2m-home-'));
  await availableInstance(pier, pier.adminToken, INSTANCE);
  const made = await servicePrincipal('m2m app', INSTANCE);
  sp = made;
  secret = made.secret;
});
after(async () => {
  await removePier(pier);
  await rm(home, { recursive: true, force: true });
});

test('discovery names the token endpoint where the SDK looks for it', async () => {
  const response = await fetch(`${pier.apiUrl}/oidc/.well-known/oauth-authorization-server`);
  assert.equal(response.status, 200);
  const body = (await response.json()) as Record<string, string>;
  assert.equal(body.token_endpoint, `${pier.apiUrl}/oidc/v1/token`);
  assert.equal(body.issuer, `${pier.apiUrl}/oidc`);
  assert.equal(typeof body.authorization_endpoint, 'string');
  const keys = (await (await fetch(body.jwks_uri)).json()) as { keys: { kid: string; d?: string }[] };
  assert.ok(keys.keys.length > 0 && keys.keys.every((key) => key.kid && key.d === undefined));
});

test("the SDK's oauth-m2m, from DATABRICKS_HOST/CLIENT_ID/CLIENT_SECRET alone, lists instances and gets a credential", async () => {
  const script = `
    import { WorkspaceClient } from '@databricks/sdk-experimental';
    const w = new WorkspaceClient({});
    const names = [];
    for await (const i of w.database.listDatabaseInstances({})) names.push(i.name);
    const me = await w.currentUser.me();
    const cred = await w.database.generateDatabaseCredential({ instance_names: [${JSON.stringify(INSTANCE)}], request_id: crypto.randomUUID() });
    console.log(JSON.stringify({ names, me: me.userName, authType: w.config.authType, token: cred.token }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH,
      HOME: home,
      DATABRICKS_HOST: pier.apiUrl,
      DATABRICKS_CLIENT_ID: sp.applicationId,
      DATABRICKS_CLIENT_SECRET: secret,
    },
  });
  const out = JSON.parse(stdout) as { names: string[]; me: string; authType: string; token: string };
  assert.deepEqual(out.names, [INSTANCE]);
  assert.equal(out.me, sp.applicationId);
  assert.equal(out.authType, 'oauth-m2m');

  // The service principal creates its own role, then logs in with the database credential.
  const w = new WorkspaceClient({
    host: pier.apiUrl,
    clientId: sp.applicationId,
    clientSecret: secret,
    authType: 'oauth-m2m',
  });
  const role = await w.database.createDatabaseInstanceRole({
    instance_name: INSTANCE,
    database_instance_role: { name: sp.applicationId, identity_type: 'SERVICE_PRINCIPAL' },
  });
  assert.equal(role.identity_type, 'SERVICE_PRINCIPAL');
  const { client, error } = await connectThroughProxy(pier, INSTANCE, sp.applicationId, out.token);
  assert.ifError(error);
  assert.equal((await client?.query('SELECT current_user AS u'))?.rows[0].u, sp.applicationId);
  await client?.end();
});

test('the access token is the Postgres password of the role named by the application id', async () => {
  const token = await tokenRequest(grant, { basic: [sp.applicationId, secret] });
  assert.equal(token.status, 200, JSON.stringify(token.body));
  assert.equal(token.body.token_type, 'Bearer');
  assert.equal(token.body.scope, 'all-apis');
  assert.equal(token.body.expires_in, 3600);
  assert.equal(token.headers['cache-control'], 'no-store');
  const accessToken = token.body.access_token as string;

  const { client, error } = await connectThroughProxy(pier, INSTANCE, sp.applicationId, accessToken);
  assert.ifError(error);
  assert.equal((await client?.query('SELECT current_user AS u'))?.rows[0].u, sp.applicationId);
  await client?.end();
  // Another role's name with this token: refused.
  const other = await connectThroughProxy(pier, INSTANCE, 'someone@example.com', accessToken);
  assert.match(String(other.error?.message), /belongs to/);

  // Form fields work as well as HTTP Basic.
  const form = await tokenRequest({ ...grant, client_id: sp.applicationId, client_secret: secret });
  assert.equal(form.status, 200, JSON.stringify(form.body));
});

test("pier/client's oauth-m2m source and pool work against Pier's real endpoint", async () => {
  const credential = await oauthM2MSource({
    host: pier.apiUrl,
    clientId: sp.applicationId,
    clientSecret: secret,
  }).fetchCredential();
  assert.ok(credential.expiresAt > Date.now() + 3000_000);
  const pool = createPool({
    env: {
      HOME: home,
      DATABRICKS_HOST: pier.apiUrl,
      DATABRICKS_CLIENT_ID: sp.applicationId,
      DATABRICKS_CLIENT_SECRET: secret,
      PGHOST: 'localhost',
      PGPORT: String(pier.proxyPort),
      PGDATABASE: 'postgres',
      PGSSLMODE: 'require',
      PGSSLROOTCERT: pier.caCertPath,
    },
  });
  try {
    assert.equal((await pool.query('SELECT current_user AS u')).rows[0].u, sp.applicationId);
  } finally {
    await pool.end();
  }
});

test('a wrong secret and an unknown client get the same 401, in about the same time', async () => {
  const wrong = await tokenRequest(grant, {
    basic: [sp.applicationId, `dose${'0'.repeat(64)}`],
    from: '127.0.0.2',
  });
  const unknown = await tokenRequest(grant, { basic: [crypto.randomUUID(), secret], from: '127.0.0.3' });
  assert.equal(wrong.status, 401);
  assert.deepEqual(wrong.body, unknown.body);
  assert.equal(wrong.body.error, 'invalid_client');
  assert.equal(wrong.headers['www-authenticate'], unknown.headers['www-authenticate']);
  assert.ok(!JSON.stringify(wrong.body).includes(sp.applicationId));

  // Interleaved, each from its own address so the throttle stays out of it.
  const times: Record<'wrong' | 'unknown', number[]> = { wrong: [], unknown: [] };
  for (let i = 0; i < 15; i++) {
    times.wrong.push(
      (await tokenRequest(grant, { basic: [sp.applicationId, 'nope'], from: `127.0.1.${i + 1}` })).ms,
    );
    times.unknown.push(
      (await tokenRequest(grant, { basic: [crypto.randomUUID(), 'nope'], from: `127.0.2.${i + 1}` })).ms,
    );
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const difference = Math.abs(median(times.wrong) - median(times.unknown));
  console.log(
    `token endpoint 401 median: wrong secret ${median(times.wrong).toFixed(2)} ms, unknown client ${median(times.unknown).toFixed(2)} ms`,
  );
  assert.ok(difference < 15, `medians differ by ${difference} ms`);
});

test('an expired secret is refused like a wrong one', async () => {
  const short = await api(
    pier,
    pier.adminToken,
    'POST',
    `/api/2.0/accounts/servicePrincipals/${sp.id}/credentials/secrets`,
    {
      lifetime: '1s',
    },
  );
  assert.equal(short.status, 200);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const refused = await tokenRequest(grant, {
    basic: [sp.applicationId, short.body.secret as string],
    from: '127.0.0.4',
  });
  assert.equal(refused.status, 401);
  assert.equal(refused.body.error, 'invalid_client');
});

test('REST refuses a database credential as a bearer token, and other grants and scopes', async () => {
  const token = (await tokenRequest(grant, { basic: [sp.applicationId, secret] })).body
    .access_token as string;
  const credential = await api(pier, token, 'POST', '/api/2.0/database/credentials', {
    instance_names: [INSTANCE],
  });
  assert.equal(credential.status, 200);
  const asBearer = await api(pier, credential.body.token as string, 'GET', `${SCIM}/Me`);
  assert.equal(asBearer.status, 401);
  assert.match(String(asBearer.body.message), /database credential/);
  assert.equal(
    (await tokenRequest({ grant_type: 'password' }, { basic: [sp.applicationId, secret] })).body.error,
    'unsupported_grant_type',
  );
  assert.equal(
    (await tokenRequest({ ...grant, scope: 'sql' }, { basic: [sp.applicationId, secret] })).body.error,
    'invalid_scope',
  );
});

test("a deleted service principal's token is refused by the API and the proxy; its permissions are gone", async () => {
  const doomed = await servicePrincipal('doomed', INSTANCE);
  const token = (await tokenRequest(grant, { basic: [doomed.applicationId, doomed.secret] })).body
    .access_token as string;
  const w = new WorkspaceClient({ host: pier.apiUrl, token, authType: 'pat' });
  await w.database.createDatabaseInstanceRole({
    instance_name: INSTANCE,
    database_instance_role: { name: doomed.applicationId, identity_type: 'SERVICE_PRINCIPAL' },
  });
  assert.equal((await api(pier, token, 'GET', `${SCIM}/Me`)).status, 200);
  const before = await connectThroughProxy(pier, INSTANCE, doomed.applicationId, token);
  assert.ifError(before.error);
  await before.client?.end();

  assert.equal(
    (await api(pier, pier.adminToken, 'DELETE', `${SCIM}/ServicePrincipals/${doomed.id}`)).status,
    204,
  );
  const rest = await api(pier, token, 'GET', '/api/2.0/database/instances');
  assert.equal(rest.status, 401);
  assert.equal(rest.body.error_code, 'UNAUTHENTICATED');
  const proxied = await connectThroughProxy(pier, INSTANCE, doomed.applicationId, token);
  assert.match(String(proxied.error?.message), /deleted or deactivated/);
  const permissions = await api(
    pier,
    pier.adminToken,
    'GET',
    `/api/2.0/permissions/database-instances/${INSTANCE}`,
  );
  assert.ok(!JSON.stringify(permissions.body).includes(doomed.applicationId));
  const again = await tokenRequest(grant, {
    basic: [doomed.applicationId, doomed.secret],
    from: '127.0.0.5',
  });
  assert.equal(again.status, 401);
});

test('failed client authentications are throttled per address, and other addresses are not', async () => {
  const from = '127.0.3.1';
  for (let i = 0; i < 10; i++) {
    assert.equal((await tokenRequest(grant, { basic: [sp.applicationId, 'guess'], from })).status, 401);
  }
  const throttled = await tokenRequest(grant, { basic: [sp.applicationId, secret], from });
  assert.equal(throttled.status, 429);
  assert.ok(Number(throttled.headers['retry-after']) >= 1);
  assert.equal(
    (await tokenRequest(grant, { basic: [sp.applicationId, secret], from: '127.0.3.2' })).status,
    200,
  );
});
