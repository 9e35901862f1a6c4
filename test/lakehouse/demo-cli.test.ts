import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import { type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';

let pier: PierProcess;
let env: NodeJS.ProcessEnv;

before(async () => {
  pier = await startPier();
  env = { DATABRICKS_HOST: pier.apiUrl, DATABRICKS_TOKEN: pier.adminToken };
});
after(async () => removePier(pier));

test('pier demo registers analytics.gold.daily_revenue and pier demo advance commits change data', async () => {
  const demo = await runPier(['demo', '--data-dir', pier.dataDir], env);
  assert.equal(demo.code, 0, demo.stderr);
  const { storage_location: storageLocation, version } = JSON.parse(demo.stdout);
  const location = storageLocation as string;
  assert.equal(version, 1);

  const w = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
  // The table is registered inside the external location made for the lakehouse directory.
  const lakehouse = await w.externalLocations.get({ name: 'pier_lakehouse' });
  assert.equal(lakehouse.url, pathToFileURL(join(pier.dataDir, 'lakehouse')).href);
  assert.ok(location.startsWith(join(pier.dataDir, 'lakehouse')));
  const table = await w.tables.get({ full_name: 'analytics.gold.daily_revenue' });
  assert.equal(table.table_type, 'EXTERNAL');
  assert.equal(table.data_source_format, 'DELTA');
  assert.deepEqual(
    table.columns?.map((c) => [c.name, c.type_name]),
    [
      ['day', 'DATE'],
      ['region', 'STRING'],
      ['orders', 'LONG'],
      ['revenue', 'DECIMAL'],
    ],
  );

  // Running it again changes nothing and fails nothing.
  const again = await runPier(['demo', '--data-dir', pier.dataDir], env);
  assert.equal(again.code, 0, again.stderr);

  const advanced = await runPier(['demo', 'advance', '--data-dir', pier.dataDir], env);
  assert.equal(advanced.code, 0, advanced.stderr);
  assert.equal(JSON.parse(advanced.stdout).version, 2);

  const changes = await runPier(['delta', 'changes', location, '--from', '2', '--format', 'jsonl']);
  assert.equal(changes.code, 0, changes.stderr);
  const rows = changes.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  const kinds = new Set(rows.map((row) => row._change_type));
  for (const kind of ['insert', 'update_preimage', 'update_postimage', 'delete'])
    assert.ok(kinds.has(kind), `${kind} rows`);
  assert.ok(rows.every((row) => row._commit_version === 2));

  const show = await runPier(['delta', 'show', location, '--limit', '0', '--format', 'jsonl']);
  assert.equal(show.code, 0, show.stderr);
  const current = show.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  assert.ok(current.length > 0);
  assert.match(current[0].day, /^\d{4}-\d{2}-\d{2}$/);
});
