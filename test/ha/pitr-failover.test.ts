import assert from 'node:assert/strict';
import { chmod, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type pg from 'pg';
import { baseBackups, createChild, INSTANCES, instanceInState } from '../backups/instances.js';
import { instanceSuperuser } from '../helpers/access.js';
import { api, eventually, type PierProcess, removePier, startPier } from '../helpers/pier.js';
import { postmasterPid, proxyClient, streamingInstance, writableNodes } from './helpers.js';

let pier: PierProcess | undefined;

after(async () => {
  if (pier) await removePier(pier);
});

/** Inserts one row and returns the LSN just after its commit. */
async function write(client: pg.Client, id: number): Promise<string> {
  await client.query('INSERT INTO orders VALUES ($1)', [id]);
  const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return rows[0].lsn;
}

async function ids(target: PierProcess, uid: string): Promise<number[]> {
  const client = await instanceSuperuser(target, uid);
  try {
    const { rows } = await client.query<{ id: number }>('SELECT id FROM orders ORDER BY id');
    return rows.map((row) => row.id);
  } finally {
    await client.end();
  }
}

test('point-in-time children of an HA instance across a failover hold exactly the rows up to their point', async () => {
  pier = await startPier();
  const created = await api(pier, pier.adminToken, 'POST', INSTANCES, { name: 'ha-pitr', node_count: 2 });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const instance = await streamingInstance(pier, 'ha-pitr', 2);
  const host = instance.read_write_dns as string;
  await baseBackups(pier, 'ha-pitr');

  // As the superuser on the primary's socket: pg_switch_wal ends a segment.
  let client = await instanceSuperuser(pier, instance.uid);
  await client.query('CREATE TABLE orders (id int PRIMARY KEY)');
  // The primary's archiver falls behind (here: it cannot write): the segments holding rows 1
  // and 2 are complete but not archived when the primary dies. Its secondary received them
  // but, as a standby, archives nothing.
  const archive = join(pier.dataDir, 'backups', instance.uid, 'wal');
  const mode = (await stat(archive)).mode & 0o777;
  await chmod(archive, 0o555);
  await write(client, 1);
  await client.query('SELECT pg_switch_wal()');
  const beforeFailover = await write(client, 2);
  await client.query('SELECT pg_switch_wal()');
  await client.end();

  process.kill(await postmasterPid(pier, instance.uid, 0), 'SIGKILL');
  await chmod(archive, mode);
  const promoted = pier;
  await eventually(
    async () => ((await writableNodes(promoted, instance.uid)).join() === '1' ? true : undefined),
    30_000,
    'node 1 promoted',
  );
  // Asked for at once, maybe before the old primary's leftover WAL is archived: its restore
  // is retried until it is.
  await instanceInState(pier, 'ha-pitr', 'AVAILABLE', 30_000);
  await createChild(pier, 'before-failover', { name: 'ha-pitr', lsn: beforeFailover });
  await streamingInstance(pier, 'ha-pitr', 2, 90_000);

  client = await proxyClient(pier, host, 'ha-pitr');
  const afterFailover = await write(client, 3);
  await write(client, 4);
  await client.end();

  const cases: [string, Record<string, unknown>, number[]][] = [
    ['before-failover', { lsn: beforeFailover }, [1, 2]],
    ['after-failover', { lsn: afterFailover }, [1, 2, 3]],
    ['at-now', {}, [1, 2, 3, 4]],
  ];
  for (const [name, ref] of cases.slice(1)) await createChild(pier, name, { name: 'ha-pitr', ...ref });
  for (const [name, , expected] of cases) {
    const child = await instanceInState(pier, name, 'AVAILABLE', 60_000);
    assert.deepEqual(await ids(pier, child.uid as string), expected, name);
  }
  if (process.env.HA_DEBUG) console.log(pier.output());
});
