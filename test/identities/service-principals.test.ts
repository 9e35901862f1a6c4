import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import pg from 'pg';
import { SOCKET_PORT } from '../../src/engine/local/cluster.js';
import { userWithToken } from '../helpers/access.js';
import { api, type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';

let pier: PierProcess;
let w: WorkspaceClient;
const SCIM = '/api/2.0/preview/scim/v2';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

before(async () => {
  pier = await startPier();
  w = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
});
after(async () => removePier(pier));

/** The store, read as someone with its files would. */
async function storeRows(sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const db = new pg.Client({
    host: join(pier.dataDir, 'run', 'store'),
    port: SOCKET_PORT,
    user: 'postgres',
    database: 'pier',
  });
  await db.connect();
  try {
    return (await db.query(sql, params)).rows;
  } finally {
    await db.end();
  }
}

const cli = (...args: string[]) =>
  runPier([...args, '--data-dir', pier.dataDir], { DATABRICKS_HOST: '', DATABRICKS_TOKEN: '' });

test('the SDK creates, gets, lists and deletes service principals in SCIM shapes', async () => {
  const created = await w.servicePrincipalsV2.create({ displayName: 'feature-flags app' });
  assert.match(created.applicationId ?? '', UUID);
  assert.equal(created.displayName, 'feature-flags app');
  assert.equal(created.active, true);
  assert.deepEqual(created.schemas, ['urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal']);

  const got = await w.servicePrincipalsV2.get({ id: created.id as string });
  assert.equal(got.applicationId, created.applicationId);
  // The SDK's list (0.17) never advances startIndex, so it loops on a non-empty page: one page by hand.
  const listed = (await api(pier, pier.adminToken, 'GET', `${SCIM}/ServicePrincipals?startIndex=1&count=100`))
    .body.Resources as { applicationId: string }[];
  assert.ok(listed.some((sp) => sp.applicationId === created.applicationId));

  // Service principals are not users, and users are not service principals.
  const users = await api(pier, pier.adminToken, 'GET', `${SCIM}/Users`);
  const userNames = (users.body.Resources as { userName: string }[]).map((u) => u.userName);
  assert.ok(!userNames.includes(created.applicationId as string));
  assert.equal((await api(pier, pier.adminToken, 'GET', `${SCIM}/Users/${created.id}`)).status, 404);
  const admin = await api(pier, pier.adminToken, 'GET', `${SCIM}/Me`);
  assert.equal(
    (await api(pier, pier.adminToken, 'GET', `${SCIM}/ServicePrincipals/${admin.body.id}`)).status,
    404,
  );

  // An admin may mint a personal access token for it (token-management on-behalf-of), as on Databricks.
  const pat = await api(pier, pier.adminToken, 'POST', '/api/2.0/token-management/on-behalf-of/tokens', {
    application_id: created.applicationId,
  });
  assert.equal(pat.status, 200, JSON.stringify(pat.body));
  const me = await api(pier, pat.body.token_value as string, 'GET', `${SCIM}/Me`);
  assert.equal(me.body.userName, created.applicationId);

  await w.servicePrincipalsV2.delete({ id: created.id as string });
  assert.equal((await api(pier, pat.body.token_value as string, 'GET', `${SCIM}/Me`)).status, 401);
  const gone = await api(pier, pier.adminToken, 'GET', `${SCIM}/ServicePrincipals/${created.id}`);
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error_code, 'RESOURCE_DOES_NOT_EXIST');
});

test('only admins manage service principals and their secrets; bad input is refused and changes nothing', async () => {
  const jane = await userWithToken(pier, 'jane@example.com');
  const before = (await api(pier, pier.adminToken, 'GET', `${SCIM}/ServicePrincipals`)).body.totalResults;
  const refused = await api(pier, jane.token, 'POST', `${SCIM}/ServicePrincipals`, { displayName: 'x' });
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error_code, 'PERMISSION_DENIED');
  for (const body of [{}, { displayName: '' }, { displayName: 'x', applicationId: 'postgres' }]) {
    const bad = await api(pier, pier.adminToken, 'POST', `${SCIM}/ServicePrincipals`, body);
    assert.equal(bad.status, 400, JSON.stringify(body));
    assert.equal(bad.body.error_code, 'INVALID_PARAMETER_VALUE');
  }
  assert.equal(
    (await api(pier, pier.adminToken, 'GET', `${SCIM}/ServicePrincipals`)).body.totalResults,
    before,
  );

  const sp = await api(pier, pier.adminToken, 'POST', `${SCIM}/ServicePrincipals`, { displayName: 'ci' });
  const secrets = `/api/2.0/accounts/servicePrincipals/${sp.body.id}/credentials/secrets`;
  assert.equal((await api(pier, jane.token, 'POST', secrets, {})).status, 403);
  assert.equal((await api(pier, jane.token, 'GET', secrets)).status, 403);
  const lifetime = await api(pier, pier.adminToken, 'POST', secrets, { lifetime: 'forever' });
  assert.equal(lifetime.status, 400);
  assert.equal((await api(pier, pier.adminToken, 'GET', secrets)).body.secrets?.toString(), '');
  const unknown = await api(
    pier,
    pier.adminToken,
    'POST',
    '/api/2.0/accounts/servicePrincipals/999999/credentials/secrets',
    {},
  );
  assert.equal(unknown.status, 404);
});

test('secrets are shown once, listed without their value, stored only as a keyed hash, and deleted', async () => {
  const sp = await w.servicePrincipalsV2.create({ displayName: 'reporting job' });
  const created = await w.servicePrincipalSecretsProxy.create({
    service_principal_id: sp.id as string,
    lifetime: '3600s',
  });
  assert.match(created.secret ?? '', /^dose[0-9a-f]{64}$/);
  const lifetimeMs = Date.parse(created.expire_time as string) - Date.parse(created.create_time as string);
  assert.ok(Math.abs(lifetimeMs - 3_600_000) < 5_000, `lifetime ${lifetimeMs} ms`);

  const listed = [];
  for await (const s of w.servicePrincipalSecretsProxy.list({ service_principal_id: sp.id as string }))
    listed.push(s);
  assert.deepEqual(
    listed.map((s) => [s.id, s.status]),
    [[created.id, 'ACTIVE']],
  );
  assert.ok(!JSON.stringify(listed).includes(created.secret as string));

  // Whoever reads the store finds neither the secret nor a plain digest of it.
  const rows = await storeRows('SELECT row_to_json(s)::text AS row FROM oauth_secrets s');
  const dump = rows.map((r) => r.row).join('\n');
  assert.ok(!dump.includes(created.secret as string));
  const { createHash } = await import('node:crypto');
  for (const algorithm of ['sha256', 'sha512', 'sha1', 'md5']) {
    assert.ok(
      !dump.includes(
        createHash(algorithm)
          .update(created.secret as string)
          .digest('hex'),
      ),
    );
  }

  await w.servicePrincipalSecretsProxy.delete({
    service_principal_id: sp.id as string,
    secret_id: created.id as string,
  });
  const after = await api(
    pier,
    pier.adminToken,
    'GET',
    `/api/2.0/accounts/servicePrincipals/${sp.id}/credentials/secrets`,
  );
  assert.deepEqual(after.body.secrets, []);
});

test('deleting a service principal removes its catalog grants and secrets', async () => {
  const sp = await w.servicePrincipalsV2.create({ displayName: 'to delete' });
  await w.servicePrincipalSecretsProxy.create({ service_principal_id: sp.id as string });
  const catalog = await api(pier, pier.adminToken, 'POST', '/api/2.1/unity-catalog/catalogs', {
    name: 'sp_catalog',
  });
  assert.equal(catalog.status, 200, JSON.stringify(catalog.body));
  const grant = await api(
    pier,
    pier.adminToken,
    'PATCH',
    '/api/2.1/unity-catalog/permissions/catalog/sp_catalog',
    {
      changes: [{ principal: sp.applicationId, add: ['USE_CATALOG'] }],
    },
  );
  assert.equal(grant.status, 200, JSON.stringify(grant.body));
  const grantsOf = () => storeRows('SELECT * FROM catalog_grants WHERE principal = $1', [sp.applicationId]);
  assert.equal((await grantsOf()).length, 1);

  await w.servicePrincipalsV2.delete({ id: sp.id as string });
  assert.deepEqual(await grantsOf(), []);
  assert.deepEqual(await storeRows('SELECT * FROM oauth_secrets WHERE identity_id = $1', [sp.id]), []);
  assert.equal((await api(pier, pier.adminToken, 'GET', `${SCIM}/ServicePrincipals/${sp.id}`)).status, 404);
});

test('pier service-principals and service-principal-secrets mirror the Databricks CLI', async () => {
  const created = await cli('service-principals', 'create', '--display-name', 'cli app');
  assert.equal(created.code, 0, created.stderr);
  const sp = JSON.parse(created.stdout) as { id: string; applicationId: string };
  assert.match(sp.applicationId, UUID);

  const listed = await cli('service-principals', 'list');
  assert.equal(listed.code, 0, listed.stderr);
  assert.ok((JSON.parse(listed.stdout) as { id: string }[]).some((s) => s.id === sp.id));
  const got = await cli('service-principals', 'get', sp.id);
  assert.equal(JSON.parse(got.stdout).displayName, 'cli app');

  const secret = await cli('service-principal-secrets', 'create', sp.id, '--lifetime', '600s');
  assert.equal(secret.code, 0, secret.stderr);
  const { id: secretId } = JSON.parse(secret.stdout) as { id: string };
  const secrets = await cli('service-principal-secrets-proxy', 'list', sp.id);
  assert.deepEqual(
    (JSON.parse(secrets.stdout) as { id: string }[]).map((s) => s.id),
    [secretId],
  );
  assert.equal((await cli('service-principal-secrets', 'delete', sp.id, secretId)).code, 0);
  assert.equal((await cli('service-principals', 'delete', sp.id)).code, 0);
  const gone = await cli('service-principals', 'get', sp.id);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /does not exist/);
});
