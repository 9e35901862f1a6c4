import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { baseBackupFilter, makeStandbyDataDir, takeBaseBackup } from '../../src/engine/local/base-backup.js';
import { initCluster, SOCKET_PORT, startCluster, stopCluster } from '../../src/engine/local/cluster.js';
import {
  handToPostgres,
  type PostgresRuntime,
  preparePostgresRuntime,
} from '../../src/engine/local/runtime.js';
import { eventually, tempDataDir } from '../helpers/pier.js';

let root: string;
let runtime: PostgresRuntime;
const primary = () => ({
  dataDir: join(root, 'primary'),
  socketDir: join(root, 'run-primary'),
  logFile: join(root, 'primary.log'),
});
const standby = () => ({
  dataDir: join(root, 'standby'),
  socketDir: join(root, 'run-standby'),
  logFile: join(root, 'standby.log'),
});
const connection = (socketDir: string) => ({
  host: socketDir,
  port: SOCKET_PORT,
  user: 'postgres',
  database: 'postgres',
});

async function query(socketDir: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client(connection(socketDir));
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

before(async () => {
  root = await tempDataDir('pier-base-backup-');
  runtime = await preparePostgresRuntime(join(root, 'runtime'));
  await handToPostgres(runtime, root, 0o755);
  await mkdir(primary().dataDir);
  await handToPostgres(runtime, primary().dataDir, 0o700);
  await initCluster(runtime, primary().dataDir);
  await startCluster(runtime, primary());
  await query(primary().socketDir, 'CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g');
});

after(async () => {
  await stopCluster(standby().dataDir).catch(() => {});
  await stopCluster(primary().dataDir).catch(() => {});
  if (!process.env.KEEP) await rm(root, { recursive: true, force: true });
  else console.log(root);
});

test('the backup filter leaves out what the Postgres docs say to leave out', () => {
  assert.equal(baseBackupFilter('pg_wal', true), 'keep-dir');
  assert.equal(baseBackupFilter('pg_replslot', true), 'keep-dir');
  assert.equal(baseBackupFilter('postmaster.pid', false), 'skip');
  assert.equal(baseBackupFilter('base/5/pgsql_tmp', true), 'skip');
  assert.equal(baseBackupFilter('base/5/pg_internal.init', false), 'skip');
  assert.equal(baseBackupFilter('base/5/16384', false), 'copy');
  assert.equal(baseBackupFilter('global/pg_control', false), 'copy');
  // Only the top-level pg_wal is emptied, not a relation file that happens to share a name.
  assert.equal(baseBackupFilter('base/pg_wal', true), 'copy');
});

test('a base backup of a running primary becomes a streaming standby', async () => {
  const backup = await makeStandbyDataDir(
    runtime,
    connection(primary().socketDir),
    primary().dataDir,
    standby().dataDir,
    {
      slotName: 'pier_standby_1',
      primaryConninfo: `host=${primary().socketDir} port=${SOCKET_PORT} user=postgres`,
    },
  );
  assert.match(backup.startLsn, /^[0-9A-F]+\/[0-9A-F]+$/);
  assert.match(backup.stopLsn, /^[0-9A-F]+\/[0-9A-F]+$/);
  assert.equal(backup.timeline, 1);
  assert.ok(backup.bytes > 1_000_000, `copied ${backup.bytes} bytes`);
  assert.match(
    await readFile(join(standby().dataDir, 'backup_label'), 'utf8'),
    /LABEL: pier standby pier_standby_1/,
  );
  assert.ok(existsSync(join(standby().dataDir, 'standby.signal')));
  assert.ok(!existsSync(join(standby().dataDir, 'postmaster.pid')));
  assert.deepEqual(await readdir(join(standby().dataDir, 'pg_wal')), ['archive_status']);
  assert.deepEqual(await readdir(join(standby().dataDir, 'pg_replslot')), []);

  await query(primary().socketDir, 'INSERT INTO t SELECT g FROM generate_series(1001, 1500) g');
  await startCluster(runtime, standby());
  const { rows } = await query(standby().socketDir, 'SELECT pg_is_in_recovery() AS standby');
  assert.equal(rows[0].standby, true);
  await eventually(
    async () => {
      const count = await query(standby().socketDir, 'SELECT count(*)::int AS n FROM t');
      return count.rows[0].n === 1500 ? true : undefined;
    },
    20_000,
    'the standby to replay the rows written after the backup',
  );
  const slot = await query(
    primary().socketDir,
    "SELECT active FROM pg_replication_slots WHERE slot_name = 'pier_standby_1'",
  );
  assert.equal(slot.rows[0].active, true);
  await assert.rejects(query(standby().socketDir, 'INSERT INTO t VALUES (0)'), /read-only transaction/);
});

test('a backup that fails leaves no partial copy behind', async () => {
  const target = join(root, 'failed');
  await assert.rejects(
    takeBaseBackup(runtime, connection(primary().socketDir), join(root, 'no-such-dir'), target, {
      label: 'x',
      waitForArchive: false,
    }),
    /base backup/,
  );
  assert.ok(!existsSync(target));
  // The server is left without a backup in progress: another one starts at once.
  const again = await takeBaseBackup(
    runtime,
    connection(primary().socketDir),
    primary().dataDir,
    join(root, 'again'),
    {
      label: 'again',
      waitForArchive: false,
    },
  );
  assert.ok(again.bytes > 0);
});
