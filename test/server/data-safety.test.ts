import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import {
  api,
  eventually,
  type PierProcess,
  removePier,
  runPier,
  startPier,
  tempDataDir,
} from '../helpers/pier.js';

/**
 * A restart can never delete an instance: not with a lost store, not with a
 * wrong or empty --store-url, not with an instance's data dir gone. Each
 * case runs real `pier up` processes on real data dirs and checks, after
 * every refusal, that each instance's rows are still on disk.
 */

async function createInstance(pier: PierProcess, name: string): Promise<string> {
  await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', { name, capacity: 'CU_1' });
  return eventually(
    async () => {
      const { body } = await api(pier, pier.adminToken, 'GET', `/api/2.0/database/instances/${name}`);
      return body.state === 'AVAILABLE' ? (body.uid as string) : undefined;
    },
    60_000,
    `${name} to be AVAILABLE`,
  );
}

async function waitForState(pier: PierProcess, name: string, state: string) {
  return eventually(
    async () => {
      const { body } = await api(pier, pier.adminToken, 'GET', `/api/2.0/database/instances/${name}`);
      return body.state === state ? body : undefined;
    },
    30_000,
    `${name} to be ${state}`,
  );
}

/** Straight to the instance's Postgres over its private socket, as the superuser. */
async function onInstance<T>(
  dataDir: string,
  uid: string,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  // The reconciler may still be starting it after a restart.
  const client = await eventually(
    async () => {
      const candidate = new pg.Client({
        host: join(dataDir, 'run', uid),
        user: 'postgres',
        database: 'postgres',
      });
      return candidate.connect().then(
        () => candidate,
        () => undefined,
      );
    },
    30_000,
    `instance ${uid} to accept connections`,
  );
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function rowsOf(dataDir: string, uid: string): Promise<string[]> {
  return onInstance(dataDir, uid, async (client) =>
    (await client.query<{ note: string }>('SELECT note FROM keep ORDER BY note')).rows.map((r) => r.note),
  );
}

/** `pier up` that is expected to refuse: exit 1 and one line saying why. */
async function refusedUp(dataDir: string, extra: string[] = []) {
  const result = await runPier([
    'up',
    '--data-dir',
    dataDir,
    '--api-port',
    '0',
    '--proxy-port',
    '0',
    ...extra,
  ]);
  assert.equal(result.code, 1, `pier up should refuse:\n${result.stdout}${result.stderr}`);
  const lines = result.stderr.trim().split('\n');
  return lines[lines.length - 1];
}

async function assertOnDisk(dataDir: string, uids: string[]) {
  for (const uid of uids) {
    assert.ok(existsSync(join(dataDir, 'instances', uid, 'PG_VERSION')), `instance ${uid} is still on disk`);
    assert.ok((await stat(join(dataDir, 'instances', uid, 'base'))).isDirectory());
  }
}

test('a restart never deletes instances: lost store, wrong or empty --store-url, missing data dir, orphans', async () => {
  const dataDir = await tempDataDir('pier-safety-');
  let pier = await startPier({ dataDir });
  const first = await createInstance(pier, 'orders');
  const second = await createInstance(pier, 'billing');
  for (const [uid, note] of [
    [first, 'order 1'],
    [second, 'invoice 1'],
  ]) {
    await onInstance(dataDir, uid, async (client) => {
      await client.query('CREATE TABLE keep (note text)');
      await client.query('INSERT INTO keep VALUES ($1)', [note]);
    });
  }
  const storeId = (await readFile(join(dataDir, 'store-id'), 'utf8')).trim();
  assert.match(storeId, /^[0-9a-f-]{36}$/);
  await pier.stop();

  // 1. The embedded store lost its PG_VERSION: refused, and the store directory is left as it was.
  const storeDir = join(dataDir, 'store');
  const storeEntries = (await readdir(storeDir)).length;
  await rename(join(storeDir, 'PG_VERSION'), join(dataDir, 'PG_VERSION.aside'));
  const lostStore = await refusedUp(dataDir);
  assert.match(
    lostStore,
    /store directory .* is not a Postgres cluster \(PG_VERSION is missing\).*never overwrites/,
  );
  assert.equal((await readdir(storeDir)).length, storeEntries - 1, 'nothing in the store was removed');
  await assertOnDisk(dataDir, [first, second]);

  // 2. The whole store directory is gone: no new empty store is made beside instances.
  await rename(storeDir, `${storeDir}.aside`);
  const noStore = await refusedUp(dataDir);
  assert.match(
    noStore,
    new RegExp(`is empty, but the data dir .* was used with store ${storeId} and holds 2 instances`),
  );
  assert.equal(existsSync(storeDir), false, 'no new store was made');
  await rename(`${storeDir}.aside`, storeDir);
  await rename(join(dataDir, 'PG_VERSION.aside'), join(storeDir, 'PG_VERSION'));

  // 3. A --store-url of an empty database, and of another Pier's store: refused, and neither is touched.
  const other = await startPier();
  const otherStore = `postgresql://postgres@localhost/pier?host=${encodeURIComponent(join(other.dataDir, 'run', 'store'))}`;
  const otherAdmin = new pg.Client({
    host: join(other.dataDir, 'run', 'store'),
    user: 'postgres',
    database: 'postgres',
  });
  await otherAdmin.connect();
  await otherAdmin.query('CREATE DATABASE empty_store');
  await otherAdmin.end();
  const emptyStore = otherStore.replace('/pier?', '/empty_store?');
  const emptyRefusal = await refusedUp(dataDir, ['--store-url', emptyStore]);
  assert.match(
    emptyRefusal,
    /The store \(postgresql:.*empty_store.*\) is empty, but the data dir .* holds 2 instances/,
  );
  const empty = new pg.Client({
    host: join(other.dataDir, 'run', 'store'),
    user: 'postgres',
    database: 'empty_store',
  });
  await empty.connect();
  const tables = await empty.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'");
  await empty.end();
  assert.equal(tables.rows[0].n, 0, 'the empty database was not migrated');
  const foreign = await refusedUp(dataDir, ['--store-url', otherStore]);
  assert.match(
    foreign,
    new RegExp(
      `belongs to another Pier \\(store id [0-9a-f-]{36}\\), not to the data dir .* \\(store id ${storeId}\\)`,
    ),
  );
  const otherInstances = await api(other, other.adminToken, 'GET', '/api/2.0/database/instances');
  assert.deepEqual(otherInstances.body.database_instances ?? [], [], 'the other store gained nothing');
  await removePier(other);
  await assertOnDisk(dataDir, [first, second]);

  // 4. One instance's data dir is missing: that instance is FAILED with a message, never re-created empty.
  await rename(join(dataDir, 'instances', second), join(dataDir, 'billing.aside'));
  pier = await startPier({ dataDir });
  await waitForState(pier, 'orders', 'AVAILABLE');
  assert.deepEqual(await rowsOf(dataDir, first), ['order 1']);
  const failed = await waitForState(pier, 'billing', 'FAILED');
  assert.match(String(failed.status_message), /data directory is missing/);
  assert.equal(existsSync(join(dataDir, 'instances', second)), false, 'not re-created');
  // Restored, it runs again by itself, with its rows.
  await rename(join(dataDir, 'billing.aside'), join(dataDir, 'instances', second));
  await eventually(
    async () => {
      const { body } = await api(pier, pier.adminToken, 'GET', '/api/2.0/database/instances/billing');
      return body.state === 'AVAILABLE' ? true : undefined;
    },
    30_000,
    'the restored instance to run again',
  );
  assert.deepEqual(await rowsOf(dataDir, second), ['invoice 1']);

  // 5. Storage the store does not know is moved to quarantine whole; a name Pier never makes is left alone.
  const stray = '0badc0de-0000-4000-8000-000000000000';
  await pier.stop();
  await cp(join(dataDir, 'instances', first), join(dataDir, 'instances', stray), { recursive: true });
  await rm(join(dataDir, 'instances', stray, 'postmaster.pid'), { force: true });
  await mkdir(join(dataDir, 'instances', 'my-notes'));
  await writeFile(join(dataDir, 'instances', 'my-notes', 'todo.txt'), 'keep me');
  pier = await startPier({ dataDir });
  await waitForState(pier, 'orders', 'AVAILABLE');
  await waitForState(pier, 'billing', 'AVAILABLE');
  const quarantined = await readdir(join(dataDir, 'quarantine'));
  assert.equal(quarantined.length, 1);
  assert.ok(quarantined[0].startsWith(`${stray}-`));
  assert.ok(existsSync(join(dataDir, 'quarantine', quarantined[0], 'PG_VERSION')), 'moved whole');
  assert.equal(existsSync(join(dataDir, 'instances', stray)), false);
  assert.equal(await readFile(join(dataDir, 'instances', 'my-notes', 'todo.txt'), 'utf8'), 'keep me');
  assert.deepEqual(await rowsOf(dataDir, first), ['order 1']);
  assert.deepEqual(await rowsOf(dataDir, second), ['invoice 1']);

  // 6. A store that forgot every instance (restored from an old backup) is refused too.
  await pier.kill(); // leaves the store running, as a crash does
  const store = new pg.Client({ host: join(dataDir, 'run', 'store'), user: 'postgres', database: 'pier' });
  await store.connect();
  await store.query('DELETE FROM instances');
  await store.end();
  const forgotten = await refusedUp(dataDir);
  assert.match(
    forgotten,
    /knows no instances, but the data dir .* holds 2 instances\. Pier will not treat them as orphans/,
  );
  await assertOnDisk(dataDir, [first, second]);

  await runPier(['down', '--data-dir', dataDir]);
  await rm(dataDir, { recursive: true, force: true });
});

test('the admin token file is replaced whole and stays 0600 even if its mode was widened', async () => {
  const dataDir = await tempDataDir('pier-token-');
  let pier = await startPier({ dataDir });
  const tokenFile = join(dataDir, 'admin-token');
  assert.equal((await stat(tokenFile)).mode & 0o777, 0o600);
  await pier.stop();
  // A token that no longer works (e.g. revoked) is replaced; a widened mode must not survive.
  await writeFile(tokenFile, 'dapi-not-a-valid-token\n', { mode: 0o644 });
  const { chmod } = await import('node:fs/promises');
  await chmod(tokenFile, 0o644);
  pier = await startPier({ dataDir });
  assert.equal((await stat(tokenFile)).mode & 0o777, 0o600);
  assert.notEqual(pier.adminToken, 'dapi-not-a-valid-token');
  const me = await api(pier, pier.adminToken, 'GET', '/api/2.0/preview/scim/v2/Me');
  assert.equal(me.status, 200);
  assert.deepEqual(
    (await readdir(dataDir)).filter((entry) => entry.endsWith('.tmp')),
    [],
    'no temp file left behind',
  );
  await removePier(pier);
});
