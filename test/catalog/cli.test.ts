import assert from 'node:assert/strict';
import { relative } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';
import { scratchDirectories } from '../helpers/scratch.js';

const corpus = (name: string) =>
  fileURLToPath(new URL(`../../../test/fixtures/delta-corpus/${name}`, import.meta.url));

let pier: PierProcess;
const scratchDir = scratchDirectories();

/** Runs `pier …` against this Pier as its admin and parses stdout as JSON. */
async function pier_(...args: string[]): Promise<unknown> {
  const result = await runPier(args, {
    DATABRICKS_HOST: pier.apiUrl,
    DATABRICKS_TOKEN: pier.adminToken,
    DATABRICKS_CONFIG_FILE: '/nonexistent',
  });
  assert.equal(result.code, 0, `pier ${args.join(' ')}: ${result.stderr}`);
  return result.stdout.trim() ? JSON.parse(result.stdout) : undefined;
}

before(async () => {
  pier = await startPier();
});
after(async () => removePier(pier));

test('pier catalogs / schemas / tables mirror the databricks CLI', async () => {
  const catalog = (await pier_('catalogs', 'create', 'analytics', '--comment', 'gold')) as Record<
    string,
    unknown
  >;
  assert.equal(catalog.name, 'analytics');
  assert.equal(catalog.comment, 'gold');
  assert.equal(((await pier_('catalogs', 'get', 'analytics')) as Record<string, unknown>).comment, 'gold');
  const updated = (await pier_('catalogs', 'update', 'analytics', '--comment', 'platinum')) as Record<
    string,
    unknown
  >;
  assert.equal(updated.comment, 'platinum');
  assert.deepEqual(
    ((await pier_('catalogs', 'list')) as { name: string }[]).map((c) => c.name),
    ['analytics'],
  );

  const schema = (await pier_('schemas', 'create', 'gold', 'analytics')) as Record<string, unknown>;
  assert.equal(schema.full_name, 'analytics.gold');
  assert.deepEqual(
    ((await pier_('schemas', 'list', 'analytics')) as { name: string }[]).map((s) => s.name),
    ['gold'],
  );

  // Tables live inside an external location; a relative path is resolved against the working directory.
  const created = (await pier_(
    'external-locations',
    'create',
    'corpus',
    relative(process.cwd(), corpus('')),
  )) as Record<string, unknown>;
  assert.equal(created.url, pathToFileURL(corpus('')).href.replace(/\/$/, ''));
  assert.deepEqual(
    ((await pier_('external-locations', 'list')) as { name: string }[]).map((l) => l.name),
    ['corpus'],
  );
  const location = relative(process.cwd(), corpus('basic_partitioned'));
  const table = (await pier_(
    'tables',
    'create-external',
    'analytics.gold.letters',
    '--location',
    location,
  )) as Record<string, unknown>;
  assert.equal(table.storage_location, corpus('basic_partitioned'));
  const got = (await pier_('tables', 'get', 'analytics.gold.letters')) as { columns: { name: string }[] };
  assert.deepEqual(
    got.columns.map((c) => c.name),
    ['letter', 'number', 'a_float'],
  );
  assert.deepEqual(
    ((await pier_('tables', 'list', 'analytics', 'gold')) as { full_name: string }[]).map((t) => t.full_name),
    ['analytics.gold.letters'],
  );

  const grants = (await pier_(
    'grants',
    'update',
    'table',
    'analytics.gold.letters',
    '--json',
    JSON.stringify({ changes: [{ principal: 'account users', add: ['SELECT'] }] }),
  )) as Record<string, unknown>;
  assert.deepEqual(grants.privilege_assignments, [{ principal: 'account users', privileges: ['SELECT'] }]);

  await pier_('tables', 'delete', 'analytics.gold.letters');
  await pier_('schemas', 'delete', 'analytics.gold');
  await pier_('catalogs', 'delete', 'analytics');
  assert.deepEqual(await pier_('catalogs', 'list'), []);
  const updated2 = (await pier_('external-locations', 'update', 'corpus', '--comment', 'fixtures')) as Record<
    string,
    unknown
  >;
  assert.equal(updated2.comment, 'fixtures');
  await pier_('external-locations', 'delete', 'corpus');
  // As databricks external-locations create NAME URL CREDENTIAL_NAME, or with --url.
  const dir = await scratchDir('pier-cli-location-');
  const withCredential = (await pier_(
    'external-locations',
    'create',
    'scratch',
    pathToFileURL(dir).href,
    'my_credential',
  )) as Record<string, unknown>;
  assert.equal(withCredential.credential_name, 'my_credential');
  await pier_('external-locations', 'delete', 'scratch');
  const withFlag = (await pier_('external-locations', 'create', 'scratch', '--url', dir)) as Record<
    string,
    unknown
  >;
  assert.equal(withFlag.url, pathToFileURL(dir).href);
  await pier_('external-locations', 'delete', 'scratch');
  assert.deepEqual(await pier_('external-locations', 'list'), []);

  const failed = await runPier(['catalogs', 'get', 'analytics'], {
    DATABRICKS_HOST: pier.apiUrl,
    DATABRICKS_TOKEN: pier.adminToken,
    DATABRICKS_CONFIG_FILE: '/nonexistent',
  });
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /Catalog 'analytics' does not exist\. \(RESOURCE_DOES_NOT_EXIST\)/);
});
