import assert from 'node:assert/strict';
import { cp, symlink } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type catalog, WorkspaceClient } from '@databricks/sdk-experimental';
import { api, type PierProcess, removePier, startPier } from '../helpers/pier.js';
import { scratchDirectories } from '../helpers/scratch.js';
import { createUser } from './users.js';

const corpus = (name: string) =>
  fileURLToPath(new URL(`../../../test/fixtures/delta-corpus/${name}`, import.meta.url));
const scratchDir = scratchDirectories();

const UC = '/api/2.1/unity-catalog';
const JANE = 'jane@example.com';

let pier: PierProcess;
let admin: WorkspaceClient;
let janeToken: string;
/** A lake directory holding copies of corpus tables; the external location 'lake' covers it. */
let lake: string;

const tableBody = (name: string, storage_location: string) => ({
  name,
  catalog_name: 'main',
  schema_name: 'raw',
  table_type: 'EXTERNAL',
  data_source_format: 'DELTA',
  storage_location,
});
const register = (token: string, name: string, location: string) =>
  api(pier, token, 'POST', `${UC}/tables`, tableBody(name, location));
const grantOnLake = (changes: unknown[], token = pier.adminToken) =>
  api(pier, token, 'PATCH', `${UC}/permissions/external_location/lake`, { changes });
const tableNames = async () =>
  (
    (await api(pier, pier.adminToken, 'GET', `${UC}/tables?catalog_name=main&schema_name=raw`)).body
      .tables as {
      name: string;
    }[]
  ).map((t) => t.name);

before(async () => {
  pier = await startPier();
  admin = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
  janeToken = await createUser(pier, JANE);

  lake = join(await scratchDir('pier-lake-'), 'lake');
  await cp(corpus('basic_partitioned'), join(lake, 'letters'), { recursive: true });
  await cp(corpus('basic-decimal-table/delta'), join(lake, 'decimals'), { recursive: true });
  await cp(corpus('cdf-table'), join(lake, 'cdf'), { recursive: true });
  // Links an attacker with write access to the lake could plant.
  await symlink('/etc', join(lake, 'etc-link'));
  await symlink('/etc/passwd', join(lake, 'passwd-link'));
  await symlink('/nonexistent/dir', join(lake, 'dangling-link'));
  await symlink(join(lake, 'letters'), join(lake, 'letters-alias'));

  await admin.catalogs.create({ name: 'main' });
  await admin.schemas.create({ name: 'raw', catalog_name: 'main' });
  // Jane may register tables in main.raw: only the storage decides below.
  const granted = await api(pier, pier.adminToken, 'PATCH', `${UC}/permissions/schema/main.raw`, {
    changes: [{ principal: JANE, add: ['USE_SCHEMA', 'CREATE_TABLE'] }],
  });
  assert.equal(granted.status, 200, JSON.stringify(granted.body));
  await api(pier, pier.adminToken, 'PATCH', `${UC}/permissions/catalog/main`, {
    changes: [{ principal: JANE, add: ['USE_CATALOG'] }],
  });
});
after(async () => removePier(pier));

test('the SDK creates, gets and lists an external location; no credential is needed for a directory', async () => {
  // CreateExternalLocation types credential_name as required; for a local directory it is optional.
  const created = await admin.externalLocations.create({
    name: 'Lake',
    url: pathToFileURL(lake).href,
    comment: 'the test lake',
  } as catalog.CreateExternalLocation);
  assert.equal(created.name, 'lake');
  assert.equal(created.url, pathToFileURL(lake).href);
  assert.equal(created.owner, 'admin@pier.local');
  assert.equal(created.comment, 'the test lake');
  assert.equal(created.read_only, false);
  assert.equal(created.credential_name, undefined);
  assert.match(created.metastore_id ?? '', /^[0-9a-f-]{36}$/);

  assert.equal((await admin.externalLocations.get({ name: 'lake' })).url, created.url);
  const listed = [];
  for await (const location of admin.externalLocations.list({})) listed.push(location.name);
  assert.deepEqual(listed, ['lake']);

  // Locations never overlap, and name an existing directory.
  for (const url of [pathToFileURL(join(lake, 'letters')).href, pathToFileURL(join(lake, '..')).href]) {
    const overlap = await api(pier, pier.adminToken, 'POST', `${UC}/external-locations`, { name: 'x', url });
    assert.equal(overlap.status, 400, url);
    assert.equal(overlap.body.error_code, 'INVALID_PARAMETER_VALUE');
    assert.match(String(overlap.body.message), /overlaps external location 'lake'/);
  }
  for (const url of ['file:///nonexistent/dir', 's3://bucket/prefix', 'relative/dir', 'file:///']) {
    const bad = await api(pier, pier.adminToken, 'POST', `${UC}/external-locations`, { name: 'x', url });
    assert.equal(bad.status, 400, url);
    assert.equal(bad.body.error_code, 'INVALID_PARAMETER_VALUE');
  }
  const taken = await api(pier, pier.adminToken, 'POST', `${UC}/external-locations`, {
    name: 'lake',
    url: pathToFileURL(await scratchDir('pier-other-')).href,
  });
  assert.equal(taken.status, 409);
  assert.equal(taken.body.error_code, 'RESOURCE_ALREADY_EXISTS');
});

test('only admins create external locations, and a user without a privilege on one cannot see it', async () => {
  const own = await scratchDir('pier-janes-');
  const denied = await api(pier, janeToken, 'POST', `${UC}/external-locations`, {
    name: 'janes',
    url: pathToFileURL(own).href,
  });
  assert.equal(denied.status, 403);
  assert.equal(denied.body.error_code, 'PERMISSION_DENIED');
  assert.match(String(denied.body.message), /does not have CREATE EXTERNAL LOCATION on Metastore/);
  assert.equal((await api(pier, pier.adminToken, 'GET', `${UC}/external-locations/janes`)).status, 404);

  const get = await api(pier, janeToken, 'GET', `${UC}/external-locations/lake`);
  assert.equal(get.status, 403);
  assert.equal(get.body.error_code, 'PERMISSION_DENIED');
  assert.deepEqual(
    (await api(pier, janeToken, 'GET', `${UC}/external-locations`)).body.external_locations,
    [],
  );
  const selfGrant = await grantOnLake([{ principal: JANE, add: ['CREATE_EXTERNAL_TABLE'] }], janeToken);
  assert.equal(selfGrant.status, 403);
  assert.equal(selfGrant.body.error_code, 'PERMISSION_DENIED');
  assert.equal(
    (await api(pier, janeToken, 'PATCH', `${UC}/external-locations/lake`, { owner: JANE })).status,
    403,
  );
  assert.equal(
    (await api(pier, janeToken, 'DELETE', `${UC}/external-locations/lake?force=true`)).status,
    403,
  );
  assert.equal(
    (await admin.externalLocations.get({ name: 'lake' })).owner,
    'admin@pier.local',
    'nothing changed',
  );
  assert.deepEqual(
    (await admin.grants.get({ securable_type: 'external_location', full_name: 'lake' }))
      .privilege_assignments,
    [],
  );
});

/** Paths that lie lexically outside the lake; some exist on disk, some do not. */
const OUTSIDE = [
  '/etc',
  '/etc/passwd',
  '/nonexistent/table',
  corpus('basic_partitioned'),
  '<lake>/../../etc',
  pathToFileURL('/etc/passwd').href,
];
/** Paths inside the lake that symbolic links lead out of, to something that exists or not. */
const ESCAPES = [
  'etc-link',
  'etc-link/passwd',
  'etc-link/nonexistent',
  'passwd-link',
  'dangling-link',
  'dangling-link/deeper',
];

/** Every "not allowed" answer seen; apart from echoing the caller's own input they must be one. */
const refusals = new Set<string>();

async function expectRefused(token: string, location: string): Promise<void> {
  const { status, body } = await register(token, 'probe', location);
  assert.equal(status, 403, `${location}: ${JSON.stringify(body)}`);
  assert.equal(body.error_code, 'PERMISSION_DENIED');
  const message = String(body.message);
  assert.match(message, /is not inside an external location/);
  assert.match(message, /pier external-locations create NAME file:\/\//, 'says how to create one');
  // The answer echoes the location as given, with `..` folded.
  const echoed = location.startsWith('file:') ? location : normalize(location);
  refusals.add(message.replace(/NAME file:\/\/[^)]+\)/, 'NAME <url>)').replaceAll(echoed, '<given>'));
  assert.equal(refusals.size, 1, [...refusals].join('\n'));
}

test('a path outside every external location gets one answer, whatever exists on disk', async () => {
  for (const path of OUTSIDE) {
    const location = path.replace('<lake>', lake);
    await expectRefused(janeToken, location);
    await expectRefused(pier.adminToken, location);
  }
  // The admin holds every privilege on the lake: links out of it are refused all the same.
  for (const path of ESCAPES) await expectRefused(pier.adminToken, join(lake, path));
  assert.deepEqual(await tableNames(), [], 'nothing was registered');
});

test('registering needs CREATE_EXTERNAL_TABLE on the location, and never reuses another table’s files', async () => {
  const letters = await register(pier.adminToken, 'letters', join(lake, 'letters'));
  assert.equal(letters.status, 200, JSON.stringify(letters.body));
  assert.equal(letters.body.storage_location, join(lake, 'letters'));

  const noGrant = await register(janeToken, 'mine', join(lake, 'decimals'));
  assert.equal(noGrant.status, 403);
  assert.equal(noGrant.body.error_code, 'PERMISSION_DENIED');
  assert.match(
    String(noGrant.body.message),
    /does not have CREATE EXTERNAL TABLE on External Location 'lake'/,
  );

  const granted = await grantOnLake([{ principal: JANE, add: ['CREATE_EXTERNAL_TABLE'] }]);
  assert.deepEqual(granted.body.privilege_assignments, [
    { principal: JANE, privileges: ['CREATE_EXTERNAL_TABLE'] },
  ]);
  assert.equal((await api(pier, janeToken, 'GET', `${UC}/external-locations/lake`)).status, 200);
  for (const path of ESCAPES) await expectRefused(janeToken, join(lake, path));

  // Jane has no SELECT on main.raw.letters: she may not register its files (or any part of them) again.
  for (const location of [
    join(lake, 'letters'),
    `${join(lake, 'letters')}/`,
    join(lake, 'letters', 'letter=a'),
    join(lake, 'letters-alias'),
    // Through a link, what exists inside the other table is not told apart from what does not.
    join(lake, 'letters-alias', 'letter=a'),
    join(lake, 'letters-alias', 'no-such-dir'),
    pathToFileURL(join(lake, 'letters')).href,
    lake,
  ]) {
    const { status, body } = await register(janeToken, 'stolen', location);
    assert.equal(status, 400, `${location}: ${JSON.stringify(body)}`);
    assert.equal(body.error_code, 'INVALID_PARAMETER_VALUE');
    assert.match(String(body.message), /overlaps the location of a table already registered/);
    assert.doesNotMatch(String(body.message), /main\.raw\.letters/, 'the other table is not named to her');
  }
  const forAdmin = await register(pier.adminToken, 'again', join(lake, 'letters-alias'));
  assert.match(String(forAdmin.body.message), /overlaps the location of table 'main.raw.letters'/);
  assert.equal((await api(pier, janeToken, 'GET', `${UC}/tables/main.raw.letters`)).status, 403);

  const missing = await register(janeToken, 'ghost', join(lake, 'no-such-table'));
  assert.equal(missing.status, 400);
  assert.match(String(missing.body.message), /No Delta table/);

  const mine = await register(janeToken, 'decimals', `${lake}/letters/../decimals/`);
  assert.equal(mine.status, 200, JSON.stringify(mine.body));
  assert.equal(mine.body.owner, JANE);
  assert.equal(
    mine.body.storage_location,
    join(lake, 'decimals'),
    'stored as the directory that was checked',
  );

  // Revoking ends it.
  await grantOnLake([{ principal: JANE, remove: ['CREATE_EXTERNAL_TABLE'] }]);
  const revoked = await register(janeToken, 'cdf', join(lake, 'cdf'));
  assert.equal(revoked.status, 403);
  assert.match(String(revoked.body.message), /CREATE EXTERNAL TABLE on External Location 'lake'/);
  assert.deepEqual(await tableNames(), ['decimals', 'letters']);
});

test('a location with tables is deleted only with force; then nothing more is registered there', async () => {
  const refused = await api(pier, pier.adminToken, 'DELETE', `${UC}/external-locations/lake`);
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error_code, 'INVALID_STATE');
  assert.match(String(refused.body.message), /2 table\(s\) registered under it/);

  const moved = await api(pier, pier.adminToken, 'PATCH', `${UC}/external-locations/lake`, {
    url: pathToFileURL(join(lake, 'cdf')).href,
  });
  assert.equal(moved.status, 400);
  assert.match(String(moved.body.message), /would be outside its new url/);
  const commented = await api(pier, pier.adminToken, 'PATCH', `${UC}/external-locations/lake`, {
    comment: 'still here',
  });
  assert.equal(commented.body.comment, 'still here');
  assert.equal(commented.body.url, pathToFileURL(lake).href);

  await admin.externalLocations.delete({ name: 'lake', force: true });
  assert.equal((await api(pier, pier.adminToken, 'GET', `${UC}/external-locations/lake`)).status, 404);
  const after = await register(pier.adminToken, 'cdf', join(lake, 'cdf'));
  assert.equal(after.status, 403);
  assert.match(String(after.body.message), /is not inside an external location/);
  assert.deepEqual(await tableNames(), ['decimals', 'letters'], 'registered tables stay');
});
