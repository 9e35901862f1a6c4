import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { availableInstance, instanceSuperuser } from '../helpers/access.js';
import { api, eventually, type PierProcess, removePier, startPier } from '../helpers/pier.js';
import { baseBackups, createChild, INSTANCES, instanceInState } from './instances.js';

const ROWS = 300_000;
let pier: PierProcess;

after(async () => {
  if (pier) await removePier(pier);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('kill -9 of Pier during a restore: the next Pier starts the restore over and the child converges', async () => {
  pier = await startPier();
  const parentUid = await availableInstance(pier, pier.adminToken, 'big');
  await baseBackups(pier, 'big');
  // WAL written after the backup: the restore replays it, which takes a moment to interrupt.
  const parent = await instanceSuperuser(pier, parentUid);
  await parent.query(
    `CREATE TABLE t AS SELECT g AS id, repeat('x', 60) AS pad FROM generate_series(1, ${ROWS}) g`,
  );
  await parent.end();

  const created = await createChild(pier, 'crashy', { name: 'big' });
  const partial = join(pier.dataDir, 'instances', `${created.uid}.partial`);
  // Recovery is running on the partial copy: its server's pid file is there.
  const recovering = await eventually(
    async () => {
      const pid = await readFile(join(partial, 'postmaster.pid'), 'utf8').catch(() => '');
      return pid ? Number.parseInt(pid, 10) : undefined;
    },
    60_000,
    'recovery running on the partial copy',
  );
  assert.equal((await api(pier, pier.adminToken, 'GET', `${INSTANCES}/crashy`)).body.state, 'STARTING');
  await pier.kill();

  pier = await startPier({ dataDir: pier.dataDir });
  // Until the child is whole it is never AVAILABLE; once it is, it holds every row.
  const seen = new Set<string>();
  await eventually(
    async () => {
      const { body } = await api(pier, pier.adminToken, 'GET', `${INSTANCES}/crashy`);
      seen.add(body.state as string);
      return body.state === 'AVAILABLE' ? true : undefined;
    },
    120_000,
    'crashy AVAILABLE after the restart',
  );
  assert.deepEqual(
    [...seen].filter((state) => state !== 'AVAILABLE' && state !== 'STARTING'),
    [],
  );
  assert.ok(!alive(recovering), 'the recovery the killed Pier started was stopped');
  assert.ok(!existsSync(partial), 'no partial copy is left');
  const child = await instanceSuperuser(pier, created.uid as string);
  const { rows } = await child.query<{ n: number }>('SELECT count(*)::int AS n FROM t');
  const recovery = await child.query<{ recovering: boolean }>('SELECT pg_is_in_recovery() AS recovering');
  await child.end();
  assert.equal(rows[0].n, ROWS);
  assert.equal(recovery.rows[0].recovering, false);
});

test('a lost data directory: the instance is FAILED, and a child made from its archive has every archived commit', async () => {
  const { body: big } = await api(pier, pier.adminToken, 'GET', `${INSTANCES}/big`);
  const client = await instanceSuperuser(pier, big.uid as string);
  await client.query('INSERT INTO t VALUES (0, $1)', ['the last row']);
  // What reaches the archive survives; archive_timeout bounds what a sudden loss can take.
  const { rows } = await client.query<{ file: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS file');
  await client.end();
  const archived = join(pier.dataDir, 'backups', big.uid as string, 'wal', rows[0].file);
  await eventually(async () => (existsSync(archived) ? true : undefined), 30_000, 'the segment archived');
  const dataDir = join(pier.dataDir, 'instances', big.uid as string);
  const postmaster = Number.parseInt(await readFile(join(dataDir, 'postmaster.pid'), 'utf8'), 10);
  process.kill(postmaster, 'SIGKILL');
  await rm(dataDir, { recursive: true, force: true });
  await instanceInState(pier, 'big', 'FAILED', 30_000);

  const atTime = await api(pier, pier.adminToken, 'POST', INSTANCES, {
    name: 'rescued',
    parent_instance_ref: { name: 'big', branch_time: new Date().toISOString() },
  });
  assert.equal(atTime.status, 400);
  assert.equal(atTime.body.error_code, 'INVALID_STATE');
  assert.match(atTime.body.message as string, /is FAILED: a child at a time needs it AVAILABLE/);

  const rescued = await createChild(pier, 'rescued', { name: 'big' });
  await instanceInState(pier, 'rescued', 'AVAILABLE', 120_000);
  const child = await instanceSuperuser(pier, rescued.uid as string);
  const count = await child.query<{ n: number; last: string }>(
    'SELECT count(*)::int AS n, max(pad) FILTER (WHERE id = 0) AS last FROM t',
  );
  await child.end();
  assert.equal(count.rows[0].n, ROWS + 1);
  assert.equal(count.rows[0].last, 'the last row');
});
