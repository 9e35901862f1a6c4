import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import { api, type PierProcess, removePier, startPier } from '../helpers/pier.js';

/** Delta tables written by Spark and delta-rs, checked into the repository. */
const corpus = (name: string) =>
  fileURLToPath(new URL(`../../../test/fixtures/delta-corpus/${name}`, import.meta.url));

let pier: PierProcess;
let w: WorkspaceClient;

before(async () => {
  pier = await startPier();
  w = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
  // Tables are registered inside an external location: the corpus directory is one.
  await w.externalLocations.create({
    name: 'corpus',
    url: pathToFileURL(corpus('')).href,
    credential_name: 'none needed',
  });
});
after(async () => removePier(pier));

async function collect<T>(iterator: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterator) items.push(item);
  return items;
}

test('the SDK creates, reads, lists and deletes catalogs and schemas', async () => {
  const created = await w.catalogs.create({
    name: 'Analytics',
    comment: 'gold tables',
    properties: { team: 'bi' },
  });
  assert.equal(created.name, 'analytics', 'names are stored lower-case');
  assert.equal(created.full_name, 'analytics');
  assert.equal(created.catalog_type, 'MANAGED_CATALOG');
  assert.equal(created.owner, 'admin@pier.local');
  assert.equal(created.comment, 'gold tables');
  assert.deepEqual(created.properties, { team: 'bi' });
  assert.ok(created.created_at && created.created_at > Date.now() - 60_000);
  assert.match(created.metastore_id ?? '', /^[0-9a-f-]{36}$/);

  const fetched = await w.catalogs.get({ name: 'ANALYTICS' });
  assert.equal(fetched.name, 'analytics');

  const schema = await w.schemas.create({ name: 'gold', catalog_name: 'analytics', comment: 'curated' });
  assert.equal(schema.full_name, 'analytics.gold');
  assert.equal(schema.catalog_name, 'analytics');
  assert.equal(schema.owner, 'admin@pier.local');
  assert.match(schema.schema_id ?? '', /^[0-9a-f-]{36}$/);
  assert.equal((await w.schemas.get({ full_name: 'analytics.gold' })).comment, 'curated');

  for (const name of ['c1', 'c2', 'c3']) await w.catalogs.create({ name });
  const all = await collect(w.catalogs.list({ max_results: 2 }));
  assert.deepEqual(
    all.map((c) => c.name),
    ['analytics', 'c1', 'c2', 'c3'],
    'the SDK follows next_page_token through every page',
  );
  const firstPage = await api(pier, pier.adminToken, 'GET', '/api/2.1/unity-catalog/catalogs?max_results=2');
  assert.equal((firstPage.body.catalogs as unknown[]).length, 2);
  assert.equal(typeof firstPage.body.next_page_token, 'string');

  assert.deepEqual(
    (await collect(w.schemas.list({ catalog_name: 'analytics' }))).map((s) => s.name),
    ['gold'],
  );

  for (const name of ['c1', 'c2', 'c3']) await w.catalogs.delete({ name });
  assert.deepEqual(
    (await collect(w.catalogs.list({}))).map((c) => c.name),
    ['analytics'],
  );
});

test('an EXTERNAL DELTA table takes its columns from the Delta log', async () => {
  await w.catalogs.create({ name: 'lake' });
  await w.schemas.create({ name: 'raw', catalog_name: 'lake' });
  const location = corpus('basic_partitioned');
  const created = await w.tables.create({
    name: 'letters',
    catalog_name: 'lake',
    schema_name: 'raw',
    table_type: 'EXTERNAL',
    data_source_format: 'DELTA',
    storage_location: location,
    // Columns in the request are ignored: the log is the truth.
    columns: [{ name: 'bogus', type_name: 'INT' }],
  });
  assert.equal(created.full_name, 'lake.raw.letters');
  assert.equal(created.table_type, 'EXTERNAL');
  assert.equal(created.data_source_format, 'DELTA');
  assert.equal(created.storage_location, location);

  const table = await w.tables.get({ full_name: 'lake.raw.letters' });
  assert.deepEqual(
    table.columns?.map((c) => [c.name, c.type_name, c.type_text, c.position, c.nullable, c.partition_index]),
    [
      ['letter', 'STRING', 'string', 0, true, 0],
      ['number', 'LONG', 'bigint', 1, true, undefined],
      ['a_float', 'DOUBLE', 'double', 2, true, undefined],
    ],
  );
  assert.deepEqual(JSON.parse(table.columns![1].type_json!), {
    name: 'number',
    type: 'long',
    nullable: true,
    metadata: {},
  });

  // A file:// URI works as well; decimals carry precision and scale.
  await w.tables.create({
    name: 'decimals',
    catalog_name: 'lake',
    schema_name: 'raw',
    table_type: 'EXTERNAL',
    data_source_format: 'DELTA',
    storage_location: pathToFileURL(corpus('basic-decimal-table/delta')).href,
  });
  const decimals = await w.tables.get({ full_name: 'lake.raw.decimals' });
  assert.deepEqual(
    decimals.columns?.map((c) => [c.name, c.type_name, c.type_text, c.type_precision, c.type_scale]),
    [
      ['part', 'DECIMAL', 'decimal(12,5)', 12, 5],
      ['col1', 'DECIMAL', 'decimal(5,2)', 5, 2],
      ['col2', 'DECIMAL', 'decimal(10,5)', 10, 5],
      ['col3', 'DECIMAL', 'decimal(20,10)', 20, 10],
    ],
  );

  const listed = await collect(w.tables.list({ catalog_name: 'lake', schema_name: 'raw' }));
  assert.deepEqual(
    listed.map((t) => t.full_name),
    ['lake.raw.decimals', 'lake.raw.letters'],
  );
  assert.ok(listed.every((t) => (t.columns ?? []).length > 0));

  // A schema with tables needs force to go; force takes its tables with it.
  const refused = await api(pier, pier.adminToken, 'DELETE', '/api/2.1/unity-catalog/schemas/lake.raw');
  assert.equal(refused.status, 400);
  assert.match(String(refused.body.message), /force=true/);
  await w.tables.delete({ full_name: 'lake.raw.decimals' });
  await w.schemas.delete({ full_name: 'lake.raw', force: true });
  const gone = await api(pier, pier.adminToken, 'GET', '/api/2.1/unity-catalog/tables/lake.raw.letters');
  assert.equal(gone.status, 404);
  assert.equal(gone.body.error_code, 'RESOURCE_DOES_NOT_EXIST');
  await w.catalogs.delete({ name: 'lake' });
});

test('PATCH updates a catalog and a schema (plain HTTP: the SDK sends no PATCH body)', async () => {
  await w.catalogs.create({ name: 'sales' });
  await w.schemas.create({ name: 'eu', catalog_name: 'sales' });

  const catalog = await api(pier, pier.adminToken, 'PATCH', '/api/2.1/unity-catalog/catalogs/sales', {
    comment: 'revenue',
    properties: { tier: 'gold' },
  });
  assert.equal(catalog.status, 200, JSON.stringify(catalog.body));
  assert.equal(catalog.body.comment, 'revenue');
  assert.deepEqual(catalog.body.properties, { tier: 'gold' });

  const renamed = await api(pier, pier.adminToken, 'PATCH', '/api/2.1/unity-catalog/schemas/sales.eu', {
    new_name: 'Europe',
  });
  assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
  assert.equal(renamed.body.full_name, 'sales.europe');
  assert.equal((await w.schemas.get({ full_name: 'sales.europe' })).name, 'europe');

  const catalogRenamed = await api(pier, pier.adminToken, 'PATCH', '/api/2.1/unity-catalog/catalogs/sales', {
    new_name: 'revenue',
  });
  assert.equal(catalogRenamed.body.name, 'revenue');
  assert.equal((await w.schemas.get({ full_name: 'revenue.europe' })).catalog_name, 'revenue');
  await w.catalogs.delete({ name: 'revenue', force: true });
});
