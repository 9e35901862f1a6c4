import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WorkspaceClient } from '@databricks/sdk-experimental';
import type pg from 'pg';
import { availableInstance, instanceSuperuser } from '../helpers/access.js';
import { api, eventually, type PierProcess, removePier, runPier, startPier } from '../helpers/pier.js';
import { baseBackups, createChild, INSTANCES, instanceInState } from './instances.js';

let pier: PierProcess;
let parentUid: string;
let parent: pg.Client;

async function instance(name: string): Promise<Record<string, unknown>> {
  return (await api(pier, pier.adminToken, 'GET', `${INSTANCES}/${name}`)).body;
}

const backups = (name: string, count = 1) => baseBackups(pier, name, count);
const available = (name: string) => instanceInState(pier, name, 'AVAILABLE');

async function ids(uid: string): Promise<number[]> {
  const client = await instanceSuperuser(pier, uid);
  try {
    const { rows } = await client.query<{ id: number }>('SELECT id FROM orders ORDER BY id');
    return rows.map((row) => row.id);
  } finally {
    await client.end();
  }
}

/** Inserts one row and returns the LSN and time just after its commit. */
async function write(client: pg.Client, id: number): Promise<{ lsn: string; time: string }> {
  await client.query('INSERT INTO orders VALUES ($1)', [id]);
  const { rows } = await client.query<{ lsn: string; time: string }>(
    `SELECT pg_current_wal_lsn()::text AS lsn, to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS time`,
  );
  // Commits after this one are stamped later than the time read here.
  await new Promise((resolve) => setTimeout(resolve, 5));
  return rows[0];
}

before(async () => {
  pier = await startPier();
  parentUid = await availableInstance(pier, pier.adminToken, 'shop');
  await backups('shop');
  parent = await instanceSuperuser(pier, parentUid);
  // The last test deletes the instance under this session.
  parent.on('error', () => {});
  await parent.query('CREATE TABLE orders (id int PRIMARY KEY)');
});

after(async () => {
  await parent?.end().catch(() => {});
  if (pier) await removePier(pier);
});

test('a child at each LSN, at each time and at now holds exactly the rows committed up to it', async () => {
  const one = await write(parent, 1);
  const two = await write(parent, 2);
  await write(parent, 3);
  const cases: [string, Record<string, unknown>, number[]][] = [
    ['at-lsn-1', { lsn: one.lsn }, [1]],
    ['at-lsn-2', { lsn: two.lsn }, [1, 2]],
    ['at-time-1', { branch_time: one.time }, [1]],
    ['at-time-2', { branch_time: two.time }, [1, 2]],
    // No target: the parent's latest LSN, without waiting for a WAL segment to fill.
    ['at-now', {}, [1, 2, 3]],
  ];
  for (const [name, ref] of cases) {
    assert.equal((await createChild(pier, name, { name: 'shop', ...ref })).state, 'STARTING');
  }
  for (const [name, ref, expected] of cases) {
    const child = await available(name);
    assert.deepEqual(await ids(child.uid as string), expected, name);
    const parentRef = child.parent_instance_ref as Record<string, unknown>;
    assert.equal(parentRef.name, 'shop');
    assert.equal(parentRef.uid, parentUid);
    assert.match(parentRef.effective_lsn as string, /^[0-9A-F]+\/[0-9A-F]+$/);
    if (ref.lsn) assert.equal(parentRef.lsn, ref.lsn);
    if (ref.branch_time) assert.equal(parentRef.branch_time, ref.branch_time);
  }
  const refs = (await instance('shop')).child_instance_refs as Record<string, unknown>[];
  assert.deepEqual(refs.map((ref) => ref.name).sort(), cases.map(([name]) => name).sort());

  // A child is independent: what it writes never reaches its parent, nor the other way.
  const child = await instanceSuperuser(pier, (await instance('at-lsn-1')).uid as string);
  await child.query('INSERT INTO orders VALUES (100)');
  await child.end();
  await parent.query('INSERT INTO orders VALUES (4)');
  assert.deepEqual(await ids((await instance('at-lsn-1')).uid as string), [1, 100]);
  assert.deepEqual(await ids(parentUid), [1, 2, 3, 4]);
});

test('a child of a child', async () => {
  const child = await available('at-now');
  await backups('at-now');
  const client = await instanceSuperuser(pier, child.uid as string);
  const mark = await write(client, 10);
  await write(client, 11);
  await client.end();
  await createChild(pier, 'grandchild', { name: 'at-now', lsn: mark.lsn });
  const grandchild = await available('grandchild');
  assert.deepEqual(await ids(grandchild.uid as string), [1, 2, 3, 10]);
  assert.equal((grandchild.parent_instance_ref as Record<string, unknown>).name, 'at-now');
});

test('targets in the future or outside the window are a 400 that changes nothing', async () => {
  const { rows } = await parent.query<{ lsn: string }>(
    'SELECT (pg_current_wal_lsn() + 100000000)::text AS lsn',
  );
  const [first] = await backups('shop');
  const refused: [Record<string, unknown>, RegExp][] = [
    [{ lsn: rows[0].lsn }, /is in the future/],
    [{ branch_time: new Date(Date.now() + 3_600_000).toISOString() }, /is in the future/],
    [
      { branch_time: new Date(Date.now() - 8 * 86_400_000).toISOString() },
      /outside the retention window of 'shop' \(7 days/,
    ],
    // Before the first base backup: nothing to restore from.
    [
      { lsn: '0/1' },
      new RegExp(
        `outside the restore window of 'shop': the earliest restorable point is LSN ${first.end_lsn}`,
      ),
    ],
    [{ lsn: 'latest' }, /must be a Postgres LSN/],
    [{ branch_time: 'yesterday' }, /must be an RFC 3339 timestamp/],
  ];
  for (const [ref, message] of refused) {
    const response = await api(pier, pier.adminToken, 'POST', INSTANCES, {
      name: 'refused',
      parent_instance_ref: { name: 'shop', ...ref },
    });
    assert.equal(response.status, 400, JSON.stringify(ref));
    assert.equal(response.body.error_code, 'INVALID_PARAMETER_VALUE');
    assert.match(response.body.message as string, message);
  }
  const missing = await api(pier, pier.adminToken, 'POST', INSTANCES, {
    name: 'refused',
    parent_instance_ref: { name: 'no-such-instance' },
  });
  assert.equal(missing.status, 404);
  assert.equal((await api(pier, pier.adminToken, 'GET', `${INSTANCES}/refused`)).status, 404);
});

test('an on-demand base backup is listed with its LSNs', async () => {
  const before = await backups('shop');
  const taken = await api(pier, pier.adminToken, 'POST', `${INSTANCES}/shop/backups`);
  assert.equal(taken.status, 200, JSON.stringify(taken.body));
  assert.equal(taken.body.trigger, 'ON_DEMAND');
  assert.match(taken.body.end_lsn as string, /^[0-9A-F]+\/[0-9A-F]+$/);
  const after = await backups('shop', before.length + 1);
  assert.equal(after.at(-1)?.backup_id, taken.body.backup_id);
});

test('the CLI: a child from --json as the Databricks CLI sends it, and the backup verbs', async () => {
  const env = {
    DATABRICKS_HOST: pier.apiUrl,
    DATABRICKS_TOKEN: pier.adminToken,
    DATABRICKS_CONFIG_PROFILE: '',
  };
  const taken = await runPier(['database', 'create-database-instance-backup', 'shop'], env);
  assert.equal(taken.code, 0, taken.stderr);
  const listed = await runPier(['database', 'list-database-instance-backups', 'shop'], env);
  assert.equal(listed.code, 0, listed.stderr);
  const { base_backups } = JSON.parse(listed.stdout) as { base_backups: { backup_id: string }[] };
  assert.equal(base_backups.at(-1)?.backup_id, JSON.parse(taken.stdout).backup_id);
  const created = await runPier(
    [
      'database',
      'create-database-instance',
      'from-cli',
      '--json',
      JSON.stringify({ parent_instance_ref: { name: 'shop' } }),
    ],
    env,
  );
  assert.equal(created.code, 0, created.stderr);
  const child = JSON.parse(created.stdout) as Record<string, Record<string, unknown>>;
  assert.equal(child.state as unknown, 'AVAILABLE');
  assert.equal(child.parent_instance_ref.name, 'shop');
  assert.deepEqual(await ids(child.uid as unknown as string), [1, 2, 3, 4]);
  // Restored from the nearest earlier base backup: the one just taken, not the first.
  const log = await readFile(join(pier.dataDir, 'logs', `instance-${child.uid}.log`), 'utf8');
  const backup = JSON.parse(taken.stdout) as { start_lsn: string };
  assert.match(log, new RegExp(`starting backup recovery with redo LSN ${backup.start_lsn},`));
});

test("the SDK: a child from createDatabaseInstance, its parent_instance_ref and the parent's child_instance_refs", async () => {
  const w = new WorkspaceClient({ host: pier.apiUrl, token: pier.adminToken, authType: 'pat' });
  const mark = await write(parent, 5);
  await w.database.createDatabaseInstance({
    database_instance: { name: 'from-sdk', parent_instance_ref: { name: 'shop', lsn: mark.lsn } },
  });
  const child = await available('from-sdk');
  const got = await w.database.getDatabaseInstance({ name: 'from-sdk' });
  assert.equal(got.parent_instance_ref?.name, 'shop');
  assert.equal(got.parent_instance_ref?.lsn, mark.lsn);
  assert.match(got.parent_instance_ref?.effective_lsn ?? '', /^[0-9A-F]+\/[0-9A-F]+$/);
  const shop = await w.database.getDatabaseInstance({ name: 'shop' });
  assert.ok(shop.child_instance_refs?.some((ref) => ref.name === 'from-sdk' && ref.uid === child.uid));
  assert.deepEqual(await ids(child.uid as string), [1, 2, 3, 4, 5]);
});

test('a parent with children is deleted only with force=true, and takes its descendants along', async () => {
  const refused = await api(pier, pier.adminToken, 'DELETE', `${INSTANCES}/shop`);
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error_code, 'INVALID_STATE');
  assert.match(refused.body.message as string, /has child instances \(.*at-now.*\).*force=true/);
  assert.equal((await instance('shop')).state, 'AVAILABLE');
  assert.equal((await instance('grandchild')).state, 'AVAILABLE');

  const deleted = await api(pier, pier.adminToken, 'DELETE', `${INSTANCES}/shop?force=true&purge=true`);
  assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
  for (const name of ['shop', 'at-now', 'grandchild', 'at-lsn-1']) {
    await eventually(
      async () =>
        (await api(pier, pier.adminToken, 'GET', `${INSTANCES}/${name}`)).status === 404 ? true : undefined,
      60_000,
      `${name} deleted`,
    );
  }
});
