/**
 * Synced-table benchmark: how fast Delta rows reach Postgres, against the
 * fastest way a person would load the same rows by hand, in the same run and
 * on the same server (a throwaway cluster with CU_2's settings):
 *
 *   (a) snapshot of a 5,000,000-row, 8-column Delta table with a bigint key,
 *       against psql `\copy … FROM` of the same rows pre-rendered as CSV into
 *       a table with the same primary key;
 *   (b) one Change Data Feed batch of 100,000 updated rows, against `\copy`
 *       of the same rows into a temp table plus one INSERT … ON CONFLICT.
 *
 * Each Pier measurement runs in a fresh child process, so its peak RSS is
 * its own. Rounds alternate the order; medians are reported.
 *
 *   npm run bench:sync              (BENCH_SYNC_ROWS=500000 for a quick run)
 */
import { execFile, fork } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
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

const execFileAsync = promisify(execFile);
const ROWS = Number(process.env.BENCH_SYNC_ROWS ?? 5_000_000);
const FILES = 10;
const ROW_GROUP = 100_000;
const CHANGED = Math.min(100_000, ROWS / 10);
const ROUNDS = Number(process.env.BENCH_SYNC_ROUNDS ?? 3);

const TABLE_SQL =
  '(id bigint PRIMARY KEY, qty integer, name text, price double precision, ts timestamptz, flag boolean, amount numeric(12,2), day date)';

function csvLine(r: DeltaRow): string {
  return `${r.id},${r.qty},${r.name},${r.price},${r.ts},${r.flag ? 't' : 'f'},${r.amount},${r.day}\n`;
}

interface Measurement {
  rows: number;
  seconds: number;
  peakRssMb?: number;
  /** CPU time of the Pier process (user + system), seconds: what is left for Postgres on the same cores. */
  cpuSeconds?: number;
}

/** Child process: one Pier measurement against the server at `socketDir`, printed as JSON. */
async function measure(kind: 'snapshot' | 'changes', location: string, socketDir: string, table: string) {
  const client = new pg.Client({
    host: socketDir,
    port: SOCKET_PORT,
    user: 'postgres',
    database: 'postgres',
  });
  await client.connect();
  const latest = await openDeltaTable(location, kind === 'snapshot' ? { version: FILES } : {});
  const layout = targetLayout(latest.schema, { primaryKey: ['id'] });
  const target = { schema: 'public', table };
  const started = performance.now();
  let rows: number;
  if (kind === 'snapshot') {
    rows = (await snapshotInto(client, { snapshot: latest, target, layout })).rows;
  } else {
    rows = (await applyChanges(client, { location, target, layout, toVersion: latest.version })).upserted;
  }
  const seconds = (performance.now() - started) / 1000;
  await client.end();
  const usage = process.resourceUsage();
  const measurement: Measurement = {
    rows,
    seconds,
    peakRssMb: usage.maxRSS / 1024,
    cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6,
  };
  process.stdout.write(`${JSON.stringify(measurement)}\n`);
}

function runChild(args: string[]): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    let out = '';
    child.stdout?.on('data', (data) => {
      out += data;
    });
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').at(-1) as string))
        : reject(new Error(`child exited ${code}`)),
    );
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Runs each command with psql, in one session, in order (`\\copy` needs a command of its own). */
async function psql(socketDir: string, ...commands: string[]): Promise<void> {
  const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', socketDir, '-U', 'postgres', '-d', 'postgres'];
  await execFileAsync('psql', [...args, ...commands.flatMap((command) => ['-c', command])], {
    maxBuffer: 1 << 20,
  });
}

async function timed(work: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}

async function main() {
  const root = await mkdtemp(join(tmpdir(), 'pier-bench-sync-'));
  const location = join(root, 'table');
  const runtime = await preparePostgresRuntime(join(tmpdir(), 'pier-test-runtime'));
  await handToPostgres(runtime, root, 0o755);
  const dataDir = join(root, 'pg');
  const socketDir = join(root, 'sock');
  try {
    // The source: FILES appends (version FILES is the full table), then one merge of CHANGED updates.
    let started = performance.now();
    await createTable(location, SCHEMA, { name: 'bench' });
    const perFile = ROWS / FILES;
    const csv = createWriteStream(join(root, 'rows.csv'));
    for (let f = 0; f < FILES; f++) {
      const rows: DeltaRow[] = new Array(perFile);
      for (let i = 0; i < perFile; i++) rows[i] = row(f * perFile + i);
      await appendRows(location, rows, { rowsPerFile: perFile, rowGroupSize: ROW_GROUP });
      if (!csv.write(rows.map(csvLine).join('')))
        await new Promise<void>((resolve) => csv.once('drain', () => resolve()));
    }
    await new Promise<void>((resolve) => csv.end(() => resolve()));
    const upserts: DeltaRow[] = [];
    for (let i = 0; i < CHANGED; i++) upserts.push(row(i * 7, 1));
    await mergeRows(
      location,
      { key: ['id'], upserts, deletes: [] },
      { rowsPerFile: perFile, rowGroupSize: ROW_GROUP },
    );
    await writeFile(join(root, 'changes.csv'), upserts.map(csvLine).join(''));
    const generateSeconds = (performance.now() - started) / 1000;

    await mkdir(dataDir);
    await handToPostgres(runtime, dataDir, 0o700);
    await initCluster(runtime, dataDir);
    await writeClusterSettings(runtime, dataDir, { ...capacitySettings('CU_2'), autovacuum: false });
    await startCluster(runtime, { dataDir, socketDir, logFile: join(root, 'pg.log') });

    const results: Record<string, Measurement[]> = { copy: [], snapshot: [], upsert: [], changes: [] };
    const loadBefore = loadavg()[0];
    started = performance.now();
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? ['copy', 'snapshot'] : ['snapshot', 'copy'];
      for (const kind of order) {
        if (kind === 'copy') {
          await psql(socketDir, `DROP TABLE IF EXISTS reference; CREATE TABLE reference ${TABLE_SQL}`);
          const seconds = await timed(() =>
            psql(socketDir, `\\copy reference FROM '${join(root, 'rows.csv')}' WITH (FORMAT csv)`),
          );
          results.copy.push({ rows: ROWS, seconds });
        } else {
          results.snapshot.push(await runChild(['measure', 'snapshot', location, socketDir, 'synced']));
        }
      }
      // (b) on tables as the snapshot left them: each round starts from version FILES again.
      for (const kind of round % 2 === 0 ? ['upsert', 'changes'] : ['changes', 'upsert']) {
        if (kind === 'upsert') {
          const seconds = await timed(() =>
            psql(
              socketDir,
              'BEGIN',
              'CREATE TEMP TABLE c (LIKE reference) ON COMMIT DROP',
              `\\copy c FROM '${join(root, 'changes.csv')}' WITH (FORMAT csv)`,
              'INSERT INTO reference SELECT * FROM c ON CONFLICT (id) DO UPDATE SET qty = EXCLUDED.qty, name = EXCLUDED.name, price = EXCLUDED.price, ts = EXCLUDED.ts, flag = EXCLUDED.flag, amount = EXCLUDED.amount, day = EXCLUDED.day',
              'COMMIT',
            ),
          );
          results.upsert.push({ rows: CHANGED, seconds });
        } else {
          results.changes.push(await runChild(['measure', 'changes', location, socketDir, 'synced']));
          // Back to version FILES for the next round's snapshot comparison.
          await psql(socketDir, `UPDATE pier_sync.progress SET delta_version = ${FILES}`);
        }
      }
    }
    const measureSeconds = (performance.now() - started) / 1000;
    const loads = [loadBefore, loadavg()[0]];

    const rate = (m: Measurement[]) => median(m.map((r) => r.rows / r.seconds));
    const rss = (m: Measurement[]) =>
      m[0].peakRssMb === undefined ? '—' : String(Math.round(Math.max(...m.map((r) => r.peakRssMb ?? 0))));
    const cpu = (m: Measurement[]) =>
      m[0].cpuSeconds === undefined ? '—' : median(m.map((r) => r.cpuSeconds ?? 0)).toFixed(1);
    const line = (what: string, how: string, m: Measurement[], reference: Measurement[]) =>
      `| ${what} | ${how} | ${m[0].rows.toLocaleString('en-US')} | ${median(m.map((r) => r.seconds)).toFixed(2)} | ${Math.round(rate(m)).toLocaleString('en-US')} | ${(rate(m) / rate(reference)).toFixed(2)} | ${rss(m)} | ${cpu(m)} |`;
    const date = new Date().toISOString().slice(0, 10);
    const report = [
      `# Synced-table benchmark (${date})`,
      '',
      `Source: ${ROWS.toLocaleString('en-US')} rows × 8 columns (bigint key, int, string, double, timestamp, boolean, decimal(12,2), date), ` +
        `${FILES} files of ${ROW_GROUP.toLocaleString('en-US')}-row row groups, written by Pier's Delta writer; then one commit updating ${CHANGED.toLocaleString('en-US')} rows (Change Data Feed).`,
      `Target: a throwaway Postgres ${runtime.version} with CU_2's settings, autovacuum off, over a unix socket. Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}.`,
      `Median of ${ROUNDS} rounds (order alternating); Pier runs in a fresh process per measurement (peak RSS is its maximum, CPU its user + system time; psql's are not measured). Ratio = rows/s ÷ the reference's rows/s in the same run.`,
      `Host load while measuring (1-minute load average, ${cpus().length} cores): ${loads.map((l) => l.toFixed(1)).join(', ')}.`,
      '',
      '| workload | how | rows | seconds | rows/s | ratio | peak RSS (MB) | Pier CPU (s) |',
      '|---|---|---:|---:|---:|---:|---:|---:|',
      line('(a) snapshot', 'reference: psql `\\copy` CSV into a keyed table', results.copy, results.copy),
      line(
        '(a) snapshot',
        'Pier: Delta → COPY into staging, key built, swapped',
        results.snapshot,
        results.copy,
      ),
      line(
        '(b) incremental',
        'reference: `\\copy` into temp + INSERT … ON CONFLICT',
        results.upsert,
        results.upsert,
      ),
      line(
        '(b) incremental',
        'Pier: Change Data Feed → temp → upsert, one transaction',
        results.changes,
        results.upsert,
      ),
      '',
      `For scale: Databricks quotes about 15,000 rows/s per CU for snapshot syncs (30,000 rows/s for CU_2) and about 1,200 rows/s per CU for continuous ones.`,
      '',
      `Generating the source took ${generateSeconds.toFixed(1)} s; the measurements ${measureSeconds.toFixed(1)} s.`,
      '',
    ].join('\n');
    process.stdout.write(report);
    if (ROWS === 5_000_000) {
      const resultsDir = join(fileURLToPath(new URL('.', import.meta.url)), '../../bench/results');
      await mkdir(resultsDir, { recursive: true });
      await writeFile(join(resultsDir, `sync-${date}.md`), report);
    }
  } finally {
    await stopCluster(dataDir).catch(() => {});
    await rm(root, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'measure') {
  const [, , , kind, location, socketDir, table] = process.argv;
  await measure(kind as 'snapshot' | 'changes', location, socketDir, table);
} else {
  await main();
}
