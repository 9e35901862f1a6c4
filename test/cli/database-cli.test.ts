import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';

let pier: PierProcess;
let env: NodeJS.ProcessEnv;

before(async () => {
  pier = await startPier();
  env = { DATABRICKS_HOST: pier.apiUrl, DATABRICKS_TOKEN: pier.adminToken, DATABRICKS_CONFIG_PROFILE: '' };
});
after(async () => removePier(pier));

test('the database verbs work as in the Databricks CLI', async () => {
  const created = await runPier(
    ['database', 'create-database-instance', 'cli-db', '--capacity', 'CU_1'],
    env,
  );
  assert.equal(created.code, 0, created.stderr);
  const instance = JSON.parse(created.stdout);
  assert.equal(instance.state, 'AVAILABLE', 'create waits for AVAILABLE');

  const noWait = await runPier(
    [
      'database',
      'create-database-instance',
      'cli-db-2',
      '--json',
      '{"capacity": "CU_2", "stopped": true}',
      '--no-wait',
    ],
    env,
  );
  assert.equal(noWait.code, 0, noWait.stderr);
  assert.equal(JSON.parse(noWait.stdout).capacity, 'CU_2');

  const got = await runPier(['database', 'get-database-instance', 'cli-db'], env);
  assert.equal(JSON.parse(got.stdout).uid, instance.uid);
  const byUid = await runPier(['database', 'find-database-instance-by-uid', '--uid', instance.uid], env);
  assert.equal(JSON.parse(byUid.stdout).name, 'cli-db');
  const listed = await runPier(['database', 'list-database-instances', '--page-size', '1'], env);
  assert.deepEqual(
    JSON.parse(listed.stdout).map((i: { name: string }) => i.name),
    ['cli-db', 'cli-db-2'],
  );

  const stopped = await runPier(['database', 'stop-database-instance', 'cli-db'], env);
  assert.equal(JSON.parse(stopped.stdout).state, 'STOPPED');
  const started = await runPier(['database', 'start-database-instance', 'cli-db'], env);
  assert.equal(JSON.parse(started.stdout).state, 'AVAILABLE');

  const resized = await runPier(
    ['database', 'update-database-instance', 'cli-db', 'capacity', '--capacity', 'CU_2'],
    env,
  );
  assert.equal(resized.code, 0, resized.stderr);
  assert.equal(JSON.parse(resized.stdout).capacity, 'CU_2');

  const deleted = await runPier(['database', 'delete-database-instance', 'cli-db-2'], env);
  assert.equal(deleted.code, 0, deleted.stderr);
});

test('errors print one line naming the problem and exit 1', async () => {
  const missing = await runPier(['database', 'get-database-instance', 'no-such-db'], env);
  assert.equal(missing.code, 1);
  assert.equal(
    missing.stderr.trim(),
    "Error: Database instance 'no-such-db' does not exist. (RESOURCE_DOES_NOT_EXIST)",
  );
  const bad = await runPier(['database', 'create-database-instance', 'x', '--capacity', 'CU_9'], env);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /CU_1, CU_2, CU_4, CU_8/);
  const badToken = await runPier(['database', 'list-database-instances'], {
    ...env,
    DATABRICKS_TOKEN: 'dapi123',
  });
  assert.equal(badToken.code, 1);
  assert.match(badToken.stderr, /UNAUTHENTICATED/);
});

test('a ~/.databrickscfg profile chosen with --profile supplies host and token', async () => {
  const config = join(pier.dataDir, 'databrickscfg');
  await writeFile(
    config,
    `[DEFAULT]\nhost = http://127.0.0.1:1\ntoken = dapiwrong\n\n[pier]\nhost = ${pier.apiUrl}\ntoken = ${pier.adminToken}\n`,
  );
  const profileEnv = { DATABRICKS_CONFIG_FILE: config, DATABRICKS_HOST: '', DATABRICKS_TOKEN: '' };
  const listed = await runPier(['database', 'list-database-instances', '--profile', 'pier'], profileEnv);
  assert.equal(listed.code, 0, listed.stderr);
  assert.ok(Array.isArray(JSON.parse(listed.stdout)));
  const missing = await runPier(['database', 'list-database-instances', '--profile', 'nope'], profileEnv);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Profile 'nope' is not in/);
});
