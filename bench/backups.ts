/**
 * `npm run bench:backups` (also the tail of `npm run bench`): how long a
 * point-in-time child takes, create → AVAILABLE, at 100 MB and 1 GB of data,
 * against a real `pier up`. Two cases per size: the nearest base backup was
 * taken after the data was written (copy only), and the data is in the WAL
 * since the backup (copy + replay of all of it). Also the base backup itself.
 * `BENCH_BACKUP_SIZES_MB=100,1024` picks the sizes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { api, type PierProcess, removePier, startPier } from '../test/helpers/pier.js';

const SIZES_MB = (process.env.BENCH_BACKUP_SIZES_MB ?? '100,1024').split(',').map(Number);
const RUNS = Number(process.env.BENCH_BACKUP_RUNS ?? 2);
const INSTANCES = '/api/2.0/database/instances';

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function until<T>(check: () => Promise<T | undefined>, timeoutMs = 30 * 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function superuser(pier: PierProcess, uid: string): pg.Client {
  return new pg.Client({
    host: join(pier.dataDir, 'run', uid),
    port: 5432,
    user: 'postgres',
    database: 'postgres',
  });
}

async function available(pier: PierProcess, name: string): Promise<Record<string, unknown>> {
  return until(async () => {
    const { body } = await api(pier, pier.adminToken, 'GET', `${INSTANCES}/${name}`);
    return body.state === 'AVAILABLE' ? body : undefined;
  });
}

/** Creates a child and returns create → AVAILABLE in ms; deletes it afterwards. */
async function timeChild(pier: PierProcess, name: string, ref: Record<string, unknown>): Promise<number> {
  const started = performance.now();
  const created = await api(pier, pier.adminToken, 'POST', INSTANCES, { name, parent_instance_ref: ref });
  if (created.status !== 200) throw new Error(JSON.stringify(created.body));
  await available(pier, name);
  const elapsed = performance.now() - started;
  await api(pier, pier.adminToken, 'DELETE', `${INSTANCES}/${name}?purge=true`);
  await until(async () =>
    (await api(pier, pier.adminToken, 'GET', `${INSTANCES}/${name}`)).status === 404 ? true : undefined,
  );
  return elapsed;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];

async function main() {
  const pier = await startPier(process.env.PIER_TRACE ? { env: { PIER_TRACE: '1' } } : {});
  const rows: string[] = [];
  try {
    for (const sizeMb of SIZES_MB) {
      const name = `bench-${sizeMb}mb`;
      const created = await api(pier, pier.adminToken, 'POST', INSTANCES, { name, capacity: 'CU_1' });
      const uid = created.body.uid as string;
      await available(pier, name);
      await until(async () => {
        const { body } = await api(pier, pier.adminToken, 'GET', `${INSTANCES}/${name}/backups`);
        return (body.base_backups as unknown[]).length > 0 ? true : undefined;
      });
      const client = superuser(pier, uid);
      await client.connect();
      // ~1 KB a row, so the table is about sizeMb.
      await client.query(
        `CREATE TABLE t AS SELECT g AS id, repeat(md5(g::text), 30) AS pad FROM generate_series(1, ${sizeMb * 1000}) g`,
      );
      const { rows: lsn } = await client.query<{ lsn: string; bytes: string }>(
        "SELECT pg_current_wal_lsn()::text AS lsn, pg_database_size('postgres')::text AS bytes",
      );
      const replay: number[] = [];
      for (let run = 0; run < RUNS; run++)
        replay.push(await timeChild(pier, `${name}-replay-${run}`, { name, lsn: lsn[0].lsn }));
      const backupStarted = performance.now();
      const backup = await api(pier, pier.adminToken, 'POST', `${INSTANCES}/${name}/backups`);
      const backupMs = performance.now() - backupStarted;
      const copy: number[] = [];
      for (let run = 0; run < RUNS; run++) copy.push(await timeChild(pier, `${name}-copy-${run}`, { name }));
      await client.end();
      const size = `${(Number(lsn[0].bytes) / 1024 ** 2).toFixed(0)} MB`;
      rows.push(
        `| ${size} | child at now, base backup after the data (copy) | ${RUNS} | ${seconds(median(copy))} | ${copy.map(seconds).join(', ')} |`,
      );
      rows.push(
        `| ${size} | child at an LSN before that backup (copy + replay of the data's WAL) | ${RUNS} | ${seconds(median(replay))} | ${replay.map(seconds).join(', ')} |`,
      );
      rows.push(
        `| ${size} | on-demand base backup (${backup.body.size_bytes} bytes) | 1 | ${seconds(backupMs)} | |`,
      );
      await api(pier, pier.adminToken, 'DELETE', `${INSTANCES}/${name}?purge=true`);
    }
  } finally {
    if (process.env.PIER_TRACE) process.stderr.write(pier.output());
    await removePier(pier);
  }
  const table = [
    `# Point-in-time child instances — ${new Date().toISOString().slice(0, 10)}`,
    '',
    "create-database-instance with parent_instance_ref → AVAILABLE, through the API of a real `pier up`; data is one table of ~1 KB rows. Reflinks are used where the file system has them; this machine's is ext4 (plain copies).",
    '',
    '| parent data | case | n | median | runs |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  process.stdout.write(table);
  await mkdir('bench/results', { recursive: true });
  await writeFile(`bench/results/backups-${new Date().toISOString().slice(0, 10)}.md`, table);
}

await main();
