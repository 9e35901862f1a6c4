/**
 * Delta reader benchmark: rows/s and MB/s of a snapshot scan and a change
 * data feed scan over a 5,000,000-row, 8-column table, against DuckDB's
 * read_parquet over the same parquet files materialised into JS rows.
 * Each measurement runs in a fresh child process so its peak RSS is its own.
 *
 *   npm run bench:delta
 */
import { fork } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { type DeltaRow, openDeltaTable, readChanges, type StructType } from '../src/delta/index.js';
import { formatDate, formatDecimal, formatTimestampNumber } from '../src/delta/values.js';
import { appendRows, createTable, mergeRows } from '../src/delta/writer.js';

const ROWS = 5_000_000;
const FILES = 10;
const ROW_GROUP = 100_000;
const UPDATED = 500_000; // rows updated in the CDF version: 10% of the table, 1M change rows
const RUNS = 3;

const SCHEMA: StructType = {
  type: 'struct',
  fields: [
    { name: 'id', type: { type: 'long' }, nullable: false, metadata: {} },
    { name: 'qty', type: { type: 'integer' }, nullable: true, metadata: {} },
    { name: 'name', type: { type: 'string' }, nullable: true, metadata: {} },
    { name: 'price', type: { type: 'double' }, nullable: true, metadata: {} },
    { name: 'ts', type: { type: 'timestamp' }, nullable: true, metadata: {} },
    { name: 'flag', type: { type: 'boolean' }, nullable: true, metadata: {} },
    { name: 'amount', type: { type: 'decimal', precision: 12, scale: 2 }, nullable: true, metadata: {} },
    { name: 'day', type: { type: 'date' }, nullable: true, metadata: {} },
  ],
};

function row(i: number, version = 0): DeltaRow {
  return {
    id: BigInt(i),
    qty: (i * 7 + version) % 1000,
    name: `customer-${i % 50_000}`,
    price: (i % 10_000) * 0.25 + version,
    ts: formatTimestampNumber(1_700_000_000_000_000 + i * 1_000_003, true),
    flag: i % 3 === 0,
    amount: formatDecimal(BigInt((i * 37) % 10_000_000) + BigInt(version), 2),
    day: formatDate(19_000 + (i % 730)),
  };
}

interface Measurement {
  rows: number;
  seconds: number;
  bytes: number;
  peakRssMb: number;
}

type Kind = 'snapshot' | 'cdf';
type Engine = 'pier' | 'duckdb';

/** Child process: one measurement, printed as JSON. */
async function measure(
  kind: Kind,
  engine: Engine,
  dir: string,
  files: string[],
  bytes: number,
  cdfVersion: number,
) {
  const started = performance.now();
  let rows = 0;
  if (engine === 'pier') {
    const batches =
      kind === 'snapshot'
        ? (await openDeltaTable(dir)).scan()
        : await readChanges(dir, cdfVersion, cdfVersion);
    for await (const batch of batches) rows += batch.length;
  } else {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const list = files.map((f) => `'${f.replaceAll("'", "''")}'`).join(', ');
    const result = await connection.stream(`SELECT * FROM read_parquet([${list}])`);
    const names = result.columnNames();
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      rows += chunk.getRowObjects(names).length;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  const measurement: Measurement = { rows, seconds, bytes, peakRssMb };
  process.stdout.write(`${JSON.stringify(measurement)}\n`);
}

function runChild(args: string[]): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    let out = '';
    child.stdout!.on('data', (data) => {
      out += data;
    });
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').at(-1)!))
        : reject(new Error(`child exited ${code}`)),
    );
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function generate(dir: string): Promise<number> {
  await createTable(dir, SCHEMA, { name: 'bench' });
  const perFile = ROWS / FILES;
  for (let f = 0; f < FILES; f++) {
    const rows: DeltaRow[] = new Array(perFile);
    for (let i = 0; i < perFile; i++) rows[i] = row(f * perFile + i);
    await appendRows(dir, rows, { rowsPerFile: perFile, rowGroupSize: ROW_GROUP });
  }
  const upserts: DeltaRow[] = [];
  for (let i = 0; i < UPDATED; i++) upserts.push(row(i * 2, 1));
  return mergeRows(
    dir,
    { key: ['id'], upserts, deletes: [] },
    { rowsPerFile: perFile, rowGroupSize: ROW_GROUP },
  );
}

async function main() {
  const dir = join(await mkdtemp(join(tmpdir(), 'pier-bench-delta-')), 'table');
  try {
    let started = performance.now();
    const cdfVersion = await generate(dir);
    const generateSeconds = (performance.now() - started) / 1000;
    const snapshot = await openDeltaTable(dir);
    const dataFiles = snapshot.files.map((f) => join(dir, decodeURIComponent(f.path)));
    const dataBytes = snapshot.files.reduce((sum, f) => sum + f.size, 0);
    const changes = await readChanges(dir, cdfVersion, cdfVersion);
    void changes;
    const cdcFiles = (await import('node:fs/promises')).readdir(join(dir, '_change_data'));
    const cdcPaths = (await cdcFiles).map((name) => join(dir, '_change_data', name));
    const cdcBytes = (await Promise.all(cdcPaths.map((p) => stat(p)))).reduce((sum, s) => sum + s.size, 0);

    const results: Record<string, Measurement[]> = {};
    started = performance.now();
    for (const kind of ['snapshot', 'cdf'] as Kind[]) {
      for (const engine of ['pier', 'duckdb'] as Engine[]) {
        const files = kind === 'snapshot' ? dataFiles : cdcPaths;
        const bytes = kind === 'snapshot' ? dataBytes : cdcBytes;
        const key = `${kind}/${engine}`;
        results[key] = [];
        for (let run = 0; run < RUNS; run++) {
          results[key].push(
            await runChild([
              'measure',
              kind,
              engine,
              dir,
              JSON.stringify(files),
              String(bytes),
              String(cdfVersion),
            ]),
          );
        }
      }
    }
    const measureSeconds = (performance.now() - started) / 1000;
    const line = (kind: Kind, engine: Engine) => {
      const runs = results[`${kind}/${engine}`];
      const seconds = median(runs.map((r) => r.seconds));
      const rows = runs[0].rows;
      const ours = median(results[`${kind}/pier`].map((r) => r.seconds));
      const duck = median(results[`${kind}/duckdb`].map((r) => r.seconds));
      const ratio = engine === 'pier' ? `${((duck / ours) * 100).toFixed(0)}%` : '100%';
      return `| ${kind === 'snapshot' ? 'snapshot scan' : 'CDF scan (1 version)'} | ${engine === 'pier' ? 'Pier (hyparquet)' : 'DuckDB read_parquet → JS rows'} | ${rows.toLocaleString('en-US')} | ${seconds.toFixed(2)} | ${Math.round(rows / seconds).toLocaleString('en-US')} | ${(runs[0].bytes / 1e6 / seconds).toFixed(1)} | ${ratio} | ${Math.round(Math.max(...runs.map((r) => r.peakRssMb)))} |`;
    };
    const date = new Date().toISOString().slice(0, 10);
    const report = [
      `# Delta reader benchmark (${date})`,
      '',
      `Table: ${ROWS.toLocaleString('en-US')} rows × 8 columns (bigint, int, string, double, timestamp, boolean, decimal(12,2), date), ` +
        `${FILES} files, ${ROW_GROUP.toLocaleString('en-US')}-row row groups, snappy; ${(dataBytes / 1e6).toFixed(1)} MB of live data. ` +
        `The CDF version updates ${UPDATED.toLocaleString('en-US')} rows (${(cdcBytes / 1e6).toFixed(1)} MB of _change_data).`,
      `Node ${process.version}, ${(await import('node:os')).cpus()[0]?.model ?? 'unknown CPU'}. Median of ${RUNS} runs, each in a fresh process; ` +
        'peak RSS is the process maximum. Ratio = Pier rows/s ÷ DuckDB rows/s.',
      '',
      '| scan | engine | rows | seconds | rows/s | MB/s | ratio to DuckDB | peak RSS (MB) |',
      '|---|---|---|---|---|---|---|---|',
      line('snapshot', 'pier'),
      line('snapshot', 'duckdb'),
      line('cdf', 'pier'),
      line('cdf', 'duckdb'),
      '',
      `Generating the table with Pier's writer took ${generateSeconds.toFixed(1)} s; the measurements ${measureSeconds.toFixed(1)} s.`,
      '',
    ].join('\n');
    process.stdout.write(report);
    const resultsDir = join(fileURLToPath(new URL('.', import.meta.url)), '../../bench/results');
    await mkdir(resultsDir, { recursive: true });
    await writeFile(join(resultsDir, `delta-${date}.md`), report);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'measure') {
  const [, , , kind, engine, dir, files, bytes, cdfVersion] = process.argv;
  await measure(kind as Kind, engine as Engine, dir, JSON.parse(files), Number(bytes), Number(cdfVersion));
} else {
  await main();
}
