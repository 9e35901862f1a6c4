import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { lsnParameter, parseLsn, segmentEndLsn } from '../../src/backups/lsn.js';
import { planPrune, walToRemove } from '../../src/backups/retention.js';
import { WAL_SCRIPT } from '../../src/backups/storage.js';
import type { BaseBackupRow } from '../../src/backups/store.js';
import { tempDataDir } from '../helpers/pier.js';

let root: string;

function pierWal(...args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(WAL_SCRIPT, args, { cwd: root }, (error, _stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
}

before(async () => {
  root = await tempDataDir('pier-wal-');
  await mkdir(join(root, 'pg_wal'));
  await mkdir(join(root, 'archive'));
});

after(() => rm(root, { recursive: true, force: true }));

const SEGMENT = '000000010000000000000003';

test('archive copies a segment in; the same segment again is success', async () => {
  await writeFile(join(root, 'pg_wal', SEGMENT), 'segment three');
  assert.deepEqual(await pierWal('archive', join(root, 'archive'), `pg_wal/${SEGMENT}`, SEGMENT), {
    code: 0,
    stderr: '',
  });
  assert.equal(await readFile(join(root, 'archive', SEGMENT), 'utf8'), 'segment three');
  // A retry after a crash between archiving and Postgres noting it.
  assert.equal((await pierWal('archive', join(root, 'archive'), `pg_wal/${SEGMENT}`, SEGMENT)).code, 0);
  // No temp file is left behind.
  assert.deepEqual(await readdir(join(root, 'archive')), [SEGMENT]);
});

test('archive refuses, loudly, to overwrite a segment with different contents', async () => {
  await writeFile(join(root, 'pg_wal', SEGMENT), 'another server wrote this');
  const result = await pierWal('archive', join(root, 'archive'), `pg_wal/${SEGMENT}`, SEGMENT);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /already archived with different contents; refusing to overwrite it/);
  assert.equal(await readFile(join(root, 'archive', SEGMENT), 'utf8'), 'segment three');
  assert.deepEqual(await readdir(join(root, 'archive')), [SEGMENT]);
});

test('restore copies an archived segment out, and exits 1 for one not archived', async () => {
  assert.equal((await pierWal('restore', join(root, 'archive'), SEGMENT, 'pg_wal/RECOVERYXLOG')).code, 0);
  assert.equal(await readFile(join(root, 'pg_wal', 'RECOVERYXLOG'), 'utf8'), 'segment three');
  const missing = await pierWal(
    'restore',
    join(root, 'archive'),
    '000000010000000000000009',
    'pg_wal/RECOVERYXLOG',
  );
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, '');
});

const DAY = 86_400_000;
function backup(id: string, daysAgo: number, startWalFile: string, now: Date): BaseBackupRow {
  const at = new Date(now.getTime() - daysAgo * DAY);
  return {
    backup_id: id,
    instance_uid: '00000000-0000-0000-0000-000000000000',
    trigger: 'scheduled',
    timeline: 1,
    start_lsn: '0/0',
    stop_lsn: '0/0',
    start_wal_file: startWalFile,
    started_at: at,
    stopped_at: at,
    size_bytes: '0',
  };
}

test('pruning keeps the newest backup before the window and everything after it', () => {
  const now = new Date('2026-06-10T00:00:00Z');
  const backups = [
    backup('d10', 10, '000000010000000000000002', now),
    backup('d8', 8, '000000010000000000000010', now),
    backup('d6', 6, '000000010000000000000020', now),
    backup('d1', 1, '000000010000000000000030', now),
  ];
  // Window of 7 days: a point 7 days ago needs d8 (the newest before it), and WAL from its start.
  assert.deepEqual(planPrune(backups, now, 7), {
    removeBackups: ['d10'],
    keepWalFrom: '000000010000000000000010',
  });
  assert.deepEqual(planPrune(backups, now, 2).removeBackups, ['d10', 'd8']);
  // Every backup inside the window: nothing goes.
  assert.deepEqual(planPrune(backups, now, 35).removeBackups, []);
  assert.deepEqual(planPrune([], now, 7), { removeBackups: [] });
  // A child about to be restored from d10 keeps it, and the WAL from its start.
  assert.deepEqual(planPrune(backups, now, 2, new Set(['d10'])), {
    removeBackups: ['d8'],
    keepWalFrom: '000000010000000000000002',
  });
  const wal = [
    '000000010000000000000001',
    '00000001000000000000000F',
    '000000010000000000000010',
    '000000010000000000000011',
    '00000002.history',
    '00000002000000000000000E.partial',
    '00000001000000000000000F.00000028.backup',
    '000000010000000000000010.00000028.backup',
  ];
  assert.deepEqual(walToRemove(wal, '000000010000000000000010'), [
    '000000010000000000000001',
    '00000001000000000000000F',
    '00000002000000000000000E.partial',
    '00000001000000000000000F.00000028.backup',
  ]);
});

test('LSNs are bigints and text, never JS numbers', () => {
  assert.equal(parseLsn('FFFFFFFF/FFFFFFFF'), 0xffffffffffffffffn);
  assert.ok(parseLsn('0/D00120') < parseLsn('0/7100120'));
  assert.equal(lsnParameter('0/16b3748', 'lsn'), '0/16B3748');
  assert.throws(() => lsnParameter('16B3748', 'lsn'), /must be a Postgres LSN/);
  assert.throws(() => lsnParameter(12, 'lsn'), /must be a Postgres LSN/);
  assert.equal(segmentEndLsn('000000010000000000000003'), '0/400000');
  assert.equal(segmentEndLsn('000000020000000100000FFF'), '2/0');
});
