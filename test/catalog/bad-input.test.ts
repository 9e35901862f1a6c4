import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { api, type PierProcess, removePier, startPier } from '../helpers/pier.js';

const corpus = (name: string) =>
  fileURLToPath(new URL(`../../../test/fixtures/delta-corpus/${name}`, import.meta.url));

let pier: PierProcess;
const call = (method: string, path: string, body?: unknown) =>
  api(pier, pier.adminToken, method, `/api/2.1/unity-catalog${path}`, body);

/** Everything a user could observe of the catalog, to check a failed call changed nothing. */
async function snapshot(): Promise<unknown> {
  const catalogs = (await call('GET', '/catalogs')).body.catalogs as { name: string }[];
  const state: Record<string, unknown> = {};
  for (const catalog of catalogs) {
    const schemas = (await call('GET', `/schemas?catalog_name=${catalog.name}`)).body.schemas as {
      name: string;
    }[];
    for (const schema of schemas) {
      const tables = (await call('GET', `/tables?catalog_name=${catalog.name}&schema_name=${schema.name}`))
        .body.tables as { name: string; columns: unknown }[];
      state[`${catalog.name}.${schema.name}`] = tables.map((t) => [t.name, t.columns]);
    }
    state[catalog.name] = catalog;
  }
  return state;
}

before(async () => {
  pier = await startPier();
  const location = await call('POST', '/external-locations', {
    name: 'corpus',
    url: pathToFileURL(corpus('')).href,
  });
  assert.equal(location.status, 200, JSON.stringify(location.body));
  assert.equal((await call('POST', '/catalogs', { name: 'main' })).status, 200);
  assert.equal((await call('POST', '/schemas', { name: 'raw', catalog_name: 'main' })).status, 200);
  const table = await call('POST', '/tables', {
    name: 'letters',
    catalog_name: 'main',
    schema_name: 'raw',
    table_type: 'EXTERNAL',
    data_source_format: 'DELTA',
    storage_location: corpus('basic_partitioned'),
  });
  assert.equal(table.status, 200, JSON.stringify(table.body));
});
after(async () => removePier(pier));

async function expectError(
  request: Promise<{ status: number; body: Record<string, unknown> }>,
  status: number,
  errorCode: string,
  message?: RegExp,
): Promise<void> {
  const before = await snapshot();
  const { status: got, body } = await request;
  assert.equal(got, status, JSON.stringify(body));
  assert.equal(body.error_code, errorCode);
  if (message) assert.match(String(body.message), message);
  assert.deepEqual(await snapshot(), before, 'a failed call changes nothing');
}

test('names follow Unity Catalog rules', async () => {
  for (const name of ['a.b', 'has space', 'a/b', 'tab\there', 'nul\u0000', 'x'.repeat(256), '', 42]) {
    await expectError(call('POST', '/catalogs', { name }), 400, 'INVALID_PARAMETER_VALUE');
  }
  await expectError(call('POST', '/catalogs', {}), 400, 'INVALID_PARAMETER_VALUE', /'name' is required/);
  await expectError(call('POST', '/schemas', { name: 'ok' }), 400, 'INVALID_PARAMETER_VALUE', /catalog_name/);
  await expectError(
    call('POST', '/catalogs', { name: 'MAIN' }),
    409,
    'RESOURCE_ALREADY_EXISTS',
    /'main' already exists/,
  );
  await expectError(
    call('POST', '/schemas', { name: 'Raw', catalog_name: 'main' }),
    409,
    'RESOURCE_ALREADY_EXISTS',
  );
  await expectError(call('GET', '/schemas/main'), 400, 'INVALID_PARAMETER_VALUE', /<catalog>\.<schema>/);
  await expectError(
    call('GET', '/tables/main.raw'),
    400,
    'INVALID_PARAMETER_VALUE',
    /<catalog>\.<schema>\.<table>/,
  );
  // 255 characters is the limit, not over it.
  assert.equal((await call('POST', '/catalogs', { name: 'x'.repeat(255) })).status, 200);
  assert.equal((await call('DELETE', `/catalogs/${'x'.repeat(255)}`)).status, 200);
});

test('bodies and queries are checked field by field', async () => {
  await expectError(call('POST', '/catalogs', '{not json'), 400, 'MALFORMED_REQUEST');
  await expectError(call('POST', '/catalogs', ['main']), 400, 'INVALID_PARAMETER_VALUE');
  await expectError(
    call('POST', '/catalogs', { name: 'p', properties: { a: 1 } }),
    400,
    'INVALID_PARAMETER_VALUE',
  );
  await expectError(call('POST', '/catalogs', { name: 'p', comment: 7 }), 400, 'INVALID_PARAMETER_VALUE');
  await expectError(
    call('POST', '/catalogs', { name: 'p', share_name: 's' }),
    400,
    'INVALID_PARAMETER_VALUE',
  );
  await expectError(call('GET', '/catalogs?max_results=-1'), 400, 'INVALID_PARAMETER_VALUE');
  await expectError(call('GET', '/catalogs?max_results=ten'), 400, 'INVALID_PARAMETER_VALUE');
  await expectError(call('GET', '/catalogs?page_token=garbage'), 400, 'INVALID_PARAMETER_VALUE');
  await expectError(call('DELETE', '/catalogs/main?force=maybe'), 400, 'INVALID_PARAMETER_VALUE');
  await expectError(
    call('PATCH', '/catalogs/main', { owner: 'nobody@example.com' }),
    400,
    'INVALID_PARAMETER_VALUE',
  );
  await expectError(
    call('PATCH', '/catalogs/main', { new_name: 'bad name' }),
    400,
    'INVALID_PARAMETER_VALUE',
  );
});

test('tables must be EXTERNAL Delta tables at a readable location', async () => {
  const table = (fields: Record<string, unknown>) =>
    call('POST', '/tables', {
      name: 't',
      catalog_name: 'main',
      schema_name: 'raw',
      table_type: 'EXTERNAL',
      data_source_format: 'DELTA',
      storage_location: corpus('basic_partitioned'),
      ...fields,
    });
  await expectError(
    table({ storage_location: corpus('no-such-table') }),
    400,
    'INVALID_PARAMETER_VALUE',
    /No Delta table/,
  );
  await expectError(table({ storage_location: 'relative/path' }), 400, 'INVALID_PARAMETER_VALUE', /absolute/);
  await expectError(table({ storage_location: 's3://bucket/t' }), 400, 'INVALID_PARAMETER_VALUE', /scheme/);
  await expectError(
    table({ storage_location: undefined }),
    400,
    'INVALID_PARAMETER_VALUE',
    /storage_location/,
  );
  await expectError(table({ table_type: 'MANAGED' }), 400, 'INVALID_PARAMETER_VALUE', /EXTERNAL/);
  await expectError(table({ data_source_format: 'PARQUET' }), 400, 'INVALID_PARAMETER_VALUE', /DELTA/);
  await expectError(table({ name: 'letters' }), 409, 'RESOURCE_ALREADY_EXISTS');
  await expectError(table({ schema_name: 'nope' }), 404, 'RESOURCE_DOES_NOT_EXIST', /Schema 'main.nope'/);
  await expectError(table({ catalog_name: 'nope' }), 404, 'RESOURCE_DOES_NOT_EXIST', /Catalog 'nope'/);
  await expectError(
    table({ storage_location: corpus('deltalog-invalid-protocol-version') }),
    400,
    'INVALID_PARAMETER_VALUE',
  );
});

test('a non-empty catalog needs force=true; force removes it all', async () => {
  await expectError(call('DELETE', '/catalogs/main'), 400, 'INVALID_STATE', /force=true/);
  await expectError(call('GET', '/catalogs/nope'), 404, 'RESOURCE_DOES_NOT_EXIST');
  assert.equal((await call('DELETE', '/catalogs/main?force=true')).status, 200);
  assert.equal((await call('GET', '/tables/main.raw.letters')).status, 404);
  assert.equal((await call('GET', '/schemas/main.raw')).status, 404);
});
