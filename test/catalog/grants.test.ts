import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import { api, type PierProcess, removePier, startPier } from '../helpers/pier.js';
import { createUser } from './users.js';

const corpus = (name: string) =>
  fileURLToPath(new URL(`../../../test/fixtures/delta-corpus/${name}`, import.meta.url));

let pier: PierProcess;
let admin: WorkspaceClient;
let janeToken: string;

const JANE = 'jane@example.com';

const grant = (type: string, name: string, changes: unknown[], token = pier.adminToken) =>
  api(pier, token, 'PATCH', `/api/2.1/unity-catalog/permissions/${type}/${name}`, { changes });

before(async () => {
  pier = await startPier();
  admin = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
  janeToken = await createUser(pier, JANE);
  await admin.externalLocations.create({
    name: 'corpus',
    url: pathToFileURL(corpus('')).href,
    credential_name: 'none needed',
  });
  await admin.catalogs.create({ name: 'main' });
  await admin.schemas.create({ name: 'sales', catalog_name: 'main' });
  await admin.tables.create({
    name: 'letters',
    catalog_name: 'main',
    schema_name: 'sales',
    table_type: 'EXTERNAL',
    data_source_format: 'DELTA',
    storage_location: corpus('basic_partitioned'),
  });
});
after(async () => removePier(pier));

test('without grants another user sees nothing and changes nothing', async () => {
  const jane = new WorkspaceClient({ host: pier.apiUrl, token: janeToken, authType: 'pat' });
  const catalogs = [];
  for await (const catalog of jane.catalogs.list({})) catalogs.push(catalog);
  assert.deepEqual(catalogs, []);

  const get = await api(pier, janeToken, 'GET', '/api/2.1/unity-catalog/tables/main.sales.letters');
  assert.equal(get.status, 403);
  assert.equal(get.body.error_code, 'PERMISSION_DENIED');
  assert.match(String(get.body.message), /USE CATALOG on Catalog 'main'/);

  const create = await api(pier, janeToken, 'POST', '/api/2.1/unity-catalog/catalogs', { name: 'mine' });
  assert.equal(create.status, 403);
  const schema = await api(pier, janeToken, 'POST', '/api/2.1/unity-catalog/schemas', {
    name: 'x',
    catalog_name: 'main',
  });
  assert.equal(schema.status, 403);
  const drop = await api(pier, janeToken, 'DELETE', '/api/2.1/unity-catalog/catalogs/main?force=true');
  assert.equal(drop.status, 403);
  const selfGrant = await grant('catalog', 'main', [{ principal: JANE, add: ['USE_CATALOG'] }], janeToken);
  assert.equal(selfGrant.status, 403);
  assert.equal((await admin.catalogs.get({ name: 'main' })).name, 'main', 'nothing changed');
});

test('USE_CATALOG, USE_SCHEMA and SELECT each open one more level', async () => {
  const path = '/api/2.1/unity-catalog/tables/main.sales.letters';
  assert.equal((await grant('catalog', 'main', [{ principal: JANE, add: ['USE_CATALOG'] }])).status, 200);
  assert.equal((await api(pier, janeToken, 'GET', '/api/2.1/unity-catalog/catalogs/main')).status, 200);
  const noSchema = await api(pier, janeToken, 'GET', path);
  assert.equal(noSchema.status, 403);
  assert.match(String(noSchema.body.message), /USE SCHEMA on Schema 'main.sales'/);

  assert.equal((await grant('schema', 'main.sales', [{ principal: JANE, add: ['USE_SCHEMA'] }])).status, 200);
  const listed = await api(
    pier,
    janeToken,
    'GET',
    '/api/2.1/unity-catalog/tables?catalog_name=main&schema_name=sales',
  );
  assert.deepEqual(listed.body.tables, [], 'tables without SELECT stay hidden from lists');
  const noSelect = await api(pier, janeToken, 'GET', path);
  assert.equal(noSelect.status, 403);
  assert.match(String(noSelect.body.message), /SELECT on Table 'main.sales.letters'/);

  const granted = await grant('table', 'main.sales.letters', [{ principal: JANE, add: ['SELECT'] }]);
  assert.deepEqual(granted.body, { privilege_assignments: [{ principal: JANE, privileges: ['SELECT'] }] });
  const table = await api(pier, janeToken, 'GET', path);
  assert.equal(table.status, 200);
  assert.equal((table.body.columns as unknown[]).length, 3);

  // SELECT does not let her delete or re-grant.
  assert.equal((await api(pier, janeToken, 'DELETE', path)).status, 403);
  assert.equal(
    (await grant('table', 'main.sales.letters', [{ principal: JANE, add: ['MODIFY'] }], janeToken)).status,
    403,
  );

  // The SDK reads the same grants.
  const perms = await admin.grants.get({ securable_type: 'table', full_name: 'main.sales.letters' });
  assert.deepEqual(perms.privilege_assignments, [{ principal: JANE, privileges: ['SELECT'] }]);

  // Revoking closes the door again.
  await grant('table', 'main.sales.letters', [{ principal: JANE, remove: ['SELECT'] }]);
  assert.equal((await api(pier, janeToken, 'GET', path)).status, 403);
});

test('privileges granted on a catalog are inherited, and effective permissions say from where', async () => {
  await grant('catalog', 'main', [{ principal: JANE, add: ['SELECT', 'CREATE_SCHEMA'] }]);
  const effective = await admin.grants.getEffective({
    securable_type: 'table',
    full_name: 'main.sales.letters',
    principal: JANE,
  });
  assert.deepEqual(effective.privilege_assignments, [
    {
      principal: JANE,
      privileges: [{ privilege: 'SELECT', inherited_from_type: 'CATALOG', inherited_from_name: 'main' }],
    },
  ]);
  assert.equal(
    (await api(pier, janeToken, 'GET', '/api/2.1/unity-catalog/tables/main.sales.letters')).status,
    200,
  );

  // CREATE_SCHEMA lets her create a schema, which she then owns.
  const created = await api(pier, janeToken, 'POST', '/api/2.1/unity-catalog/schemas', {
    name: 'janes',
    catalog_name: 'main',
  });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  assert.equal(created.body.owner, JANE);
  // As its owner she may register tables in it without CREATE_TABLE (the files need CREATE_EXTERNAL_TABLE).
  await grant('external_location', 'corpus', [{ principal: JANE, add: ['CREATE_EXTERNAL_TABLE'] }]);
  const table = await api(pier, janeToken, 'POST', '/api/2.1/unity-catalog/tables', {
    name: 'mine',
    catalog_name: 'main',
    schema_name: 'janes',
    table_type: 'EXTERNAL',
    data_source_format: 'DELTA',
    storage_location: corpus('basic-decimal-table/delta'),
  });
  assert.equal(table.status, 200, JSON.stringify(table.body));
  assert.equal(
    (await api(pier, janeToken, 'DELETE', '/api/2.1/unity-catalog/schemas/main.janes?force=true')).status,
    200,
  );

  // Transferring ownership hands over control.
  const transfer = await api(pier, pier.adminToken, 'PATCH', '/api/2.1/unity-catalog/catalogs/main', {
    owner: JANE,
  });
  assert.equal(transfer.body.owner, JANE);
  assert.equal(
    (await grant('schema', 'main.sales', [{ principal: JANE, add: ['MODIFY'] }], janeToken)).status,
    200,
  );
});

test('grant changes are checked and all-or-nothing', async () => {
  const before = await admin.grants.get({ securable_type: 'schema', full_name: 'main.sales' });
  const unknownUser = await grant('schema', 'main.sales', [
    { principal: JANE, add: ['CREATE_TABLE'] },
    { principal: 'nobody@example.com', add: ['USE_SCHEMA'] },
  ]);
  assert.equal(unknownUser.status, 400);
  assert.equal(unknownUser.body.error_code, 'INVALID_PARAMETER_VALUE');
  const wrongLevel = await grant('table', 'main.sales.letters', [{ principal: JANE, add: ['USE_CATALOG'] }]);
  assert.equal(wrongLevel.status, 400);
  assert.match(String(wrongLevel.body.message), /cannot be granted on Table 'main.sales.letters'/);
  const unknownPrivilege = await grant('schema', 'main.sales', [{ principal: JANE, add: ['FLY'] }]);
  assert.equal(unknownPrivilege.status, 400);
  const badType = await grant('volume', 'main.sales.v', [{ principal: JANE, add: ['SELECT'] }]);
  assert.equal(badType.status, 400);
  const missing = await grant('schema', 'main.nope', [{ principal: JANE, add: ['USE_SCHEMA'] }]);
  assert.equal(missing.status, 404);
  assert.deepEqual(await admin.grants.get({ securable_type: 'schema', full_name: 'main.sales' }), before);
});
