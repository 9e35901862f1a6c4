import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import { Store } from '../../src/store/store.js';
import { api, type PierProcess, removePier, startPier } from '../helpers/pier.js';
import { createUser } from './users.js';

const UC = '/api/2.1/unity-catalog';
const JANE = 'jane@example.com';
const CATALOGS = 1100;

let pier: PierProcess;
let janeToken: string;

async function collect<T>(iterator: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterator) items.push(item);
  return items;
}

before(async () => {
  pier = await startPier();
  janeToken = await createUser(pier, JANE);
  // Many catalogs at once, straight into the store; Jane may use every hundredth, everyone c0550.
  const socket = join(pier.dataDir, 'run', 'store');
  const store = new Store(`postgresql://postgres@localhost:5432/pier?host=${encodeURIComponent(socket)}`);
  try {
    await store.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO catalogs (id, name, catalog_type, owner, created_by, updated_by)
         SELECT gen_random_uuid(), 'c' || lpad(i::text, 4, '0'), 'MANAGED_CATALOG', 'admin@pier.local',
                'admin@pier.local', 'admin@pier.local'
           FROM generate_series(0, $1 - 1) AS i`,
        [CATALOGS],
      );
      await tx.query(
        `INSERT INTO catalog_grants (catalog_id, principal, privilege)
         SELECT id, $1, 'USE_CATALOG' FROM catalogs WHERE name LIKE '%00'
         UNION ALL SELECT id, 'account users', 'USE_CATALOG' FROM catalogs WHERE name = 'c0550'`,
        [JANE],
      );
    });
  } finally {
    await store.close();
  }
});
after(async () => removePier(pier));

const list = (token: string, query = '') => api(pier, token, 'GET', `${UC}/catalogs${query}`);

test('a list without max_results still comes in pages of at most 1000', async () => {
  const all = await list(pier.adminToken);
  assert.equal(all.status, 200);
  assert.equal((all.body.catalogs as unknown[]).length, 1000);
  assert.equal(typeof all.body.next_page_token, 'string');
  const rest = await list(pier.adminToken, `?page_token=${all.body.next_page_token}`);
  assert.equal((rest.body.catalogs as unknown[]).length, CATALOGS - 1000);
  assert.equal(rest.body.next_page_token, undefined);

  assert.equal(
    ((await list(pier.adminToken, '?max_results=1000000')).body.catalogs as unknown[]).length,
    1000,
  );
  assert.equal(((await list(pier.adminToken, '?max_results=0')).body.catalogs as unknown[]).length, 100);
  for (const bad of ['-1', '-1000000', 'ten', '1.5']) {
    const refused = await list(pier.adminToken, `?max_results=${bad}`);
    assert.equal(refused.status, 400, bad);
    assert.equal(refused.body.error_code, 'INVALID_PARAMETER_VALUE');
  }
  const badToken = await list(pier.adminToken, '?page_token=bm9wZQ');
  assert.equal(badToken.status, 400);
  assert.match(String(badToken.body.message), /page_token is invalid/);

  const w = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
  const names = (await collect(w.catalogs.list({}))).map((c) => c.name);
  assert.equal(names.length, CATALOGS);
  assert.equal(new Set(names).size, CATALOGS, 'no catalog twice across pages');
});

test('a user sees only the catalogs granted to them, page by page', async () => {
  const expected = [
    ...Array.from({ length: 11 }, (_, i) => `c${String(i * 100).padStart(4, '0')}`),
    'c0550',
  ].sort();
  const w = new WorkspaceClient({ host: pier.apiUrl, token: janeToken, authType: 'pat' });
  assert.deepEqual(
    (await collect(w.catalogs.list({}))).map((c) => c.name),
    expected,
  );

  const pages: string[][] = [];
  let token: string | undefined;
  do {
    const page = await list(janeToken, `?max_results=5${token ? `&page_token=${token}` : ''}`);
    assert.equal(page.status, 200);
    pages.push((page.body.catalogs as { name: string }[]).map((c) => c.name));
    token = page.body.next_page_token as string | undefined;
  } while (token);
  assert.deepEqual(
    pages.map((p) => p.length),
    [5, 5, 2],
  );
  assert.deepEqual(pages.flat(), expected);
});
