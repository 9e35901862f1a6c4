import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { availableInstance, instanceSuperuser } from '../helpers/access.js';
import { api, eventually, type PierProcess, removePier, startPier } from '../helpers/pier.js';
import { baseBackups, createChild, INSTANCES, instanceInState } from './instances.js';

const TEN_DAYS_MS = 10 * 86_400_000;
let pier: PierProcess;

after(async () => {
  if (pier) await removePier(pier);
});

async function backupList(name: string): Promise<Record<string, string>[]> {
  const { body } = await api(pier, pier.adminToken, 'GET', `${INSTANCES}/${name}/backups`);
  return (body.base_backups ?? []) as Record<string, string>[];
}

const gone = async (name: string) =>
  eventually(
    async () =>
      (await api(pier, pier.adminToken, 'GET', `${INSTANCES}/${name}`)).status === 404 ? true : undefined,
    60_000,
    `${name} deleted`,
  );

test('archives are pruned to the retention window; a deleted instance keeps its archive for the window unless purged', async () => {
  pier = await startPier();
  const archive = (uid: string) => join(pier.dataDir, 'backups', uid);
  const keepUid = await availableInstance(pier, pier.adminToken, 'keep', { retention_window_in_days: 9 });
  const updated = await api(
    pier,
    pier.adminToken,
    'PATCH',
    `${INSTANCES}/keep?update_mask=retention_window_in_days`,
    {
      retention_window_in_days: 2,
    },
  );
  assert.equal(updated.status, 200, JSON.stringify(updated.body));
  const tooLong = await api(
    pier,
    pier.adminToken,
    'PATCH',
    `${INSTANCES}/keep?update_mask=retention_window_in_days`,
    {
      retention_window_in_days: 36,
    },
  );
  assert.equal(tooLong.status, 400);
  assert.match(tooLong.body.message as string, /between 2 and 35/);
  const goneUid = await availableInstance(pier, pier.adminToken, 'gone', { retention_window_in_days: 2 });
  const purgedUid = await availableInstance(pier, pier.adminToken, 'purged');
  for (const name of ['keep', 'gone', 'purged']) await baseBackups(pier, name);
  assert.equal(
    (await api(pier, pier.adminToken, 'GET', `${INSTANCES}/keep`)).body.effective_retention_window_in_days,
    2,
  );

  const client = await instanceSuperuser(pier, keepUid);
  await client.query('CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g');
  await client.query('SELECT pg_switch_wal()');
  assert.equal((await api(pier, pier.adminToken, 'POST', `${INSTANCES}/keep/backups`)).status, 200);
  await client.query('INSERT INTO t SELECT g FROM generate_series(1001, 2000) g');
  await client.end();
  const before = (await backupList('keep')).map((backup) => backup.backup_id);
  assert.equal(before.length, 2);

  // The last commit before a delete reaches the archive, though its WAL segment is not full.
  const last = await instanceSuperuser(pier, goneUid);
  await last.query('CREATE TABLE last_words AS SELECT 1 AS id');
  const { rows: segment } = await last.query<{ file: string }>(
    'SELECT pg_walfile_name(pg_current_wal_lsn()) AS file',
  );
  await last.end();
  assert.equal((await api(pier, pier.adminToken, 'DELETE', `${INSTANCES}/purged?purge=true`)).status, 200);
  assert.equal((await api(pier, pier.adminToken, 'DELETE', `${INSTANCES}/gone`)).status, 200);
  await gone('purged');
  await gone('gone');
  assert.ok(!existsSync(archive(purgedUid)), 'purge=true removes the archive at once');
  assert.equal((await readdir(join(archive(goneUid), 'base'))).length, 1, 'without purge the archive stays');
  assert.ok((await readdir(join(archive(goneUid), 'wal'))).includes(segment[0].file));

  // Ten days on: past the 2-day windows.
  await pier.stop();
  // A base backup cut short by a crash left its staging copy: the next Pier drops it.
  await mkdir(join(archive(keepUid), 'base', '20260101T000000Z-dead.partial'));
  pier = await startPier({ dataDir: pier.dataDir, env: { PIER_TEST_CLOCK_OFFSET_MS: String(TEN_DAYS_MS) } });
  assert.ok(!existsSync(join(archive(keepUid), 'base', '20260101T000000Z-dead.partial')));
  const [latest] = await eventually(
    async () => {
      const list = await backupList('keep');
      return list.length === 1 && !before.includes(list[0].backup_id) ? list : undefined;
    },
    60_000,
    'a scheduled backup, and the older ones pruned',
  );
  assert.equal(latest.trigger, 'SCHEDULED');
  await eventually(
    async () => {
      const on = await readdir(join(archive(keepUid), 'base'));
      return on.length === 1 && on[0] === latest.backup_id ? true : undefined;
    },
    30_000,
    'the pruned base backups gone from storage',
  );
  const kept = (await backupList('keep'))[0];
  await eventually(
    async () => {
      const wal = (await readdir(join(archive(keepUid), 'wal'))).filter((name) => !name.endsWith('.history'));
      return wal.length > 0 && wal.every((name) => name.slice(8, 24) >= walFileOf(kept.start_lsn))
        ? true
        : undefined;
    },
    30_000,
    'the WAL before the kept backup pruned',
  );
  await eventually(
    async () => (existsSync(archive(goneUid)) ? undefined : true),
    30_000,
    'the expired archive removed',
  );

  // What is left is enough: a child at now has every row.
  const child = await createChild(pier, 'restored', { name: 'keep' });
  await instanceInState(pier, 'restored', 'AVAILABLE');
  const restored = await instanceSuperuser(pier, child.uid as string);
  const { rows } = await restored.query<{ n: number }>('SELECT count(*)::int AS n FROM t');
  await restored.end();
  assert.equal(rows[0].n, 2000);
});

/** The log and segment part of the WAL file name holding `lsn` (1 MB segments). */
function walFileOf(lsn: string): string {
  const [high, low] = lsn.split('/').map((part) => BigInt(`0x${part}`));
  const segment = ((high << 32n) | low) >> 20n;
  const perLog = 4096n;
  const hex = (value: bigint) => value.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(segment / perLog)}${hex(segment % perLog)}`;
}
