/**
 * Should synced tables leave room on their pages for HOT updates? A
 * snapshot writes pages full (fillfactor 100); the incremental path then
 * updates rows in place with `INSERT … ON CONFLICT DO UPDATE`. With free
 * room on the page Postgres can make such an update HOT (no new index
 * entry, no new page). This measures both sides on the same server in the
 * same run, alternating: the snapshot (more pages to write at fillfactor
 * 90), then one Change Data Feed batch of CHANGED updated rows (the share
 * of HOT updates, seconds), and the table's size after it.
 *
 *   node dist/bench/sync-fillfactor.js     (BENCH_FF_ROWS, BENCH_FF_ROUNDS)
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type DeltaRow, openDeltaTable } from '../src/delta/index.js';
import { appendRows, createTable, mergeRows } from '../src/delta/writer.js';
import { capacitySettings } from '../src/engine/local/capacity.js';
import {
  initCluster,
  SOCKET_PORT,
  startCluster,
  stopCluster,
  writeClusterSettings,
} from '../src/engine/local/cluster.js';
import { handToPostgres, preparePostgresRuntime } from '../src/engine/local/runtime.js';
import { applyChanges } from '../src/sync/changes.js';
import { targetLayout } from '../src/sync/columns.js';
import { snapshotInto } from '../src/sync/snapshot.js';
import { row, SCHEMA } from './sync-rows.js';

const ROWS = Number(process.env.BENCH_FF_ROWS ?? 1_000_000);
const CHANGED = Math.min(100_000, ROWS / 10);
const ROUNDS = Number(process.env.BENCH_FF_ROUNDS ?? 3);
const FILLFACTORS = [100, 90];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

interface Round {
  snapshotSeconds: number;
  changesSeconds: number;
  hotShare: number;
  mbBefore: number;
  mbAfter: number;
}

async function main() {
  const root = await mkdtemp(join(tmpdir(), 'pier-bench-ff-'));
  const location = join(root, 'table');
  const runtime = await preparePostgresRuntime(join(tmpdir(), 'pier-test-runtime'));
  await handToPostgres(runtime, root, 0o755);
  const dataDir = join(root, 'pg');
  const socketDir = join(root, 'sock');
  try {
    await createTable(location, SCHEMA, { name: 'bench' });
    const files = 10;
    for (let f = 0; f < files; f++) {
      const rows: DeltaRow[] = [];
      for (let i = 0; i < ROWS / files; i++) rows.push(row((f * ROWS) / files + i));
      await appendRows(location, rows, { rowGroupSize: 100_000 });
    }
    // Updates spread over the table as bench/sync.ts makes them: every 7th id.
    const upserts: DeltaRow[] = [];
    for (let i = 0; i < CHANGED; i++) upserts.push(row(i * 7, 1));
    await mergeRows(location, { key: ['id'], upserts, deletes: [] }, { rowGroupSize: 100_000 });
    const before = await openDeltaTable(location, { version: files });
    const layout = targetLayout(before.schema, { primaryKey: ['id'] });

    await mkdir(dataDir);
    await handToPostgres(runtime, dataDir, 0o700);
    await initCluster(runtime, dataDir);
    await writeClusterSettings(runtime, dataDir, { ...capacitySettings('CU_2'), autovacuum: false });
    await startCluster(runtime, { dataDir, socketDir, logFile: join(root, 'pg.log') });
    const client = new pg.Client({
      host: socketDir,
      port: SOCKET_PORT,
      user: 'postgres',
      database: 'postgres',
    });
    await client.connect();
    const results = new Map<number, Round[]>(FILLFACTORS.map((f) => [f, []]));
    const loadBefore = loadavg()[0];
    const size = async () =>
      Number((await client.query(`SELECT pg_total_relation_size('public.synced') AS b`)).rows[0].b) / 2 ** 20;
    for (let round = 0; round < ROUNDS; round++) {
      for (const fillfactor of round % 2 === 0 ? FILLFACTORS : [...FILLFACTORS].reverse()) {
        const target = { schema: 'public', table: 'synced' };
        let started = performance.now();
        await snapshotInto(client, { snapshot: before, target, layout, fillfactor });
        const snapshotSeconds = (performance.now() - started) / 1000;
        await client.query('CHECKPOINT');
        const mbBefore = await size();
        started = performance.now();
        const applied = await applyChanges(client, { location, target, layout, toVersion: files + 1 });
        const changesSeconds = (performance.now() - started) / 1000;
        if (applied.upserted !== CHANGED) throw new Error(`upserted ${applied.upserted}, not ${CHANGED}`);
        // The statistics collector reports a committed transaction's counts shortly after it.
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const { rows } = await client.query(
          `SELECT n_tup_upd::float8 AS upd, n_tup_hot_upd::float8 AS hot FROM pg_stat_user_tables WHERE relname = 'synced'`,
        );
        results.get(fillfactor)?.push({
          snapshotSeconds,
          changesSeconds,
          hotShare: rows[0].upd > 0 ? rows[0].hot / rows[0].upd : 0,
          mbBefore,
          mbAfter: await size(),
        });
      }
    }
    await client.end();
    const loads = [loadBefore, loadavg()[0]];
    const date = new Date().toISOString().slice(0, 10);
    const lines = [
      `# Synced tables: fillfactor 100 vs 90 (${date})`,
      '',
      `${ROWS.toLocaleString('en-US')} rows × 8 columns snapshotted, then one Change Data Feed batch updating ${CHANGED.toLocaleString('en-US')} rows (every 7th id), through Pier's engine (snapshotInto, applyChanges). Medians of ${ROUNDS} rounds, order alternating. A throwaway Postgres ${runtime.version} with CU_2's settings, autovacuum off. Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}; 1-minute load average ${loads.map((l) => l.toFixed(1)).join(' before, ')} after.`,
      '',
      '| fillfactor | snapshot (s) | snapshot rows/s | incremental (s) | incremental rows/s | HOT updates | size after snapshot (MB) | size after batch (MB) |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...FILLFACTORS.map((f) => {
        const r = results.get(f) as Round[];
        const snap = median(r.map((x) => x.snapshotSeconds));
        const inc = median(r.map((x) => x.changesSeconds));
        return `| ${f} | ${snap.toFixed(2)} | ${Math.round(ROWS / snap).toLocaleString('en-US')} | ${inc.toFixed(2)} | ${Math.round(CHANGED / inc).toLocaleString('en-US')} | ${(100 * median(r.map((x) => x.hotShare))).toFixed(0)}% | ${median(r.map((x) => x.mbBefore)).toFixed(0)} | ${median(r.map((x) => x.mbAfter)).toFixed(0)} |`;
      }),
      '',
    ];
    const report = lines.join('\n');
    process.stdout.write(report);
    await mkdir('bench/results', { recursive: true });
    await writeFile(join('bench/results', `sync-fillfactor-${date}.md`), report);
  } finally {
    await stopCluster(dataDir).catch(() => {});
    await rm(root, { recursive: true, force: true });
  }
}

await main();
