/**
 * `npm run bench:autoscaling` (also part of `npm run bench`): Lakebase
 * Autoscaling on Pier against a real `pier up`:
 * - branch creation (POST …/branches → operation done, endpoint ACTIVE) at
 *   100 MB and 1 GB of parent data (Neon: about a second whatever the size);
 * - wake-up, suspended endpoint → first row through the proxy, p50/p95 over
 *   20 wakes (Databricks: "a few hundred milliseconds");
 * - idle cost of a suspended endpoint: processes left, bytes on disk.
 * `BENCH_AUTOSCALING_SIZES_MB=100,1024` and `BENCH_WAKES=20` change the runs.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { api, type PierProcess, removePier, startPier } from '../test/helpers/pier.js';

const SIZES_MB = (process.env.BENCH_AUTOSCALING_SIZES_MB ?? '100,1024').split(',').map(Number);
const WAKES = Number(process.env.BENCH_WAKES ?? 20);
const PG = '/api/2.0/postgres';
const USER = 'admin@pier.local';

async function until<T>(check: () => Promise<T | undefined>, timeoutMs = 30 * 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Starts a long-running call and waits for its operation; returns the elapsed ms. */
async function operation(pier: PierProcess, method: string, path: string, body?: unknown): Promise<number> {
  const started = performance.now();
  const { status, body: op } = await api(pier, pier.adminToken, method, `${PG}/${path}`, body);
  if (status !== 200) throw new Error(JSON.stringify(op));
  const done = await until(async () => {
    const { body: polled } = await api(pier, pier.adminToken, 'GET', `${PG}/${op.name}`);
    return polled.done ? polled : undefined;
  });
  if (done.error) throw new Error(JSON.stringify(done.error));
  return performance.now() - started;
}

async function endpointClient(pier: PierProcess, endpoint: string, ca: string): Promise<pg.Client> {
  const { body } = await api(pier, pier.adminToken, 'GET', `${PG}/${endpoint}`);
  const host = (body.status as { hosts: { host: string } }).hosts.host;
  const credential = await api(pier, pier.adminToken, 'POST', `${PG}/credentials`, { endpoint });
  return new pg.Client({
    host,
    port: pier.proxyPort,
    user: USER,
    database: 'databricks_postgres',
    password: credential.body.token as string,
    ssl: { ca },
  });
}

async function state(pier: PierProcess, endpoint: string): Promise<string> {
  const { body } = await api(pier, pier.adminToken, 'GET', `${PG}/${endpoint}`);
  return (body.status as { current_state: string }).current_state;
}

const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.ceil((p / 100) * values.length) - 1)];

function postgresProcessesIn(dir: string): number {
  const out = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.includes('postgres') && line.includes(dir)).length;
}

function duBytes(dir: string): number {
  return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);
}

async function main() {
  const pier = await startPier({ args: ['--min-suspend-timeout', '1'] });
  const ca = await readFile(pier.caCertPath as string, 'utf8');
  const lines: string[] = [];
  try {
    // Branch creation at each size.
    const branchRows: string[] = [];
    for (const sizeMb of SIZES_MB) {
      const project = `bench-${sizeMb}mb`;
      await operation(pier, 'POST', `projects?project_id=${project}`, {
        spec: { default_endpoint_settings: { suspend_timeout_duration: '86400s' } },
      });
      const client = await endpointClient(
        pier,
        `projects/${project}/branches/production/endpoints/primary`,
        ca,
      );
      await client.connect();
      // ~1 KB a row, so the table is about sizeMb.
      await client.query(
        `CREATE TABLE t AS SELECT g AS id, repeat(md5(g::text), 30) AS pad FROM generate_series(1, ${sizeMb * 1000}) g`,
      );
      const { rows } = await client.query<{ bytes: string }>(
        "SELECT pg_database_size('databricks_postgres')::text AS bytes",
      );
      await client.end();
      const times: number[] = [];
      for (let run = 1; run <= 2; run++) {
        times.push(
          await operation(pier, 'POST', `projects/${project}/branches?branch_id=b${run}`, {
            spec: { no_expiry: true },
          }),
        );
        await operation(pier, 'DELETE', `projects/${project}/branches/b${run}`);
      }
      branchRows.push(
        `| ${sizeMb} MB (database ${(Number(rows[0].bytes) / 1024 ** 2).toFixed(0)} MiB) | ${times.map((t) => (t / 1000).toFixed(2)).join(' s, ')} s |`,
      );
      await operation(pier, 'DELETE', `projects/${project}?purge=true`);
    }

    // Wake-ups.
    await operation(pier, 'POST', 'projects?project_id=sleepy', {
      spec: { default_endpoint_settings: { suspend_timeout_duration: '1s' } },
    });
    const endpoint = 'projects/sleepy/branches/production/endpoints/primary';
    const first = await endpointClient(pier, endpoint, ca);
    await first.connect();
    const dataDir = (await first.query<{ d: string }>("SELECT current_setting('data_directory') AS d"))
      .rows[0].d;
    await first.end();
    const wakes: number[] = [];
    let suspendedCost = { processes: 0, bytes: 0 };
    for (let i = 0; i < WAKES; i++) {
      await until(async () => ((await state(pier, endpoint)) === 'IDLE' ? true : undefined));
      // Connection details first (as a pool holds them): the timing is the wake and the first row.
      const client = await endpointClient(pier, endpoint, ca);
      if (i === 0) suspendedCost = { processes: postgresProcessesIn(dataDir), bytes: duBytes(dataDir) };
      const started = performance.now();
      await client.connect();
      await client.query('SELECT 1');
      wakes.push(performance.now() - started);
      await client.end();
    }
    const warm: number[] = [];
    await operation(pier, 'PATCH', `${endpoint}?update_mask=spec.suspension`, {
      spec: { no_suspension: true },
    });
    for (let i = 0; i < WAKES; i++) {
      const client = await endpointClient(pier, endpoint, ca);
      const started = performance.now();
      await client.connect();
      await client.query('SELECT 1');
      warm.push(performance.now() - started);
      await client.end();
    }

    const date = new Date().toISOString().slice(0, 10);
    lines.push(
      `# Lakebase Autoscaling on Pier (${date})`,
      '',
      `\`npm run bench:autoscaling\` on ${execFileSync('nproc', { encoding: 'utf8' }).trim()} cores (shared), ext4 (no reflinks: a branch is a file copy).`,
      '',
      '## Branch creation (POST …/branches → operation done, endpoint ACTIVE), two runs',
      '',
      '| parent data | time |',
      '|---|---|',
      ...branchRows,
      '',
      'Neon creates a branch in about a second whatever the size (copy-on-write storage); Pier copies the parent (a base backup) and replays to its end, so time grows with size.',
      '',
      `## Wake-up: suspended endpoint → connected (TLS, credential) and first row, ${WAKES} wakes`,
      '',
      '| | p50 | p95 | max |',
      '|---|---|---|---|',
      `| from suspended | ${percentile(wakes, 50).toFixed(0)} ms | ${percentile(wakes, 95).toFixed(0)} ms | ${Math.max(...wakes).toFixed(0)} ms |`,
      `| already running | ${percentile(warm, 50).toFixed(0)} ms | ${percentile(warm, 95).toFixed(0)} ms | ${Math.max(...warm).toFixed(0)} ms |`,
      '',
      'Databricks documents "a few hundred milliseconds" to wake.',
      '',
      '## Idle cost of a suspended endpoint',
      '',
      `- Postgres processes for it: ${suspendedCost.processes}`,
      `- bytes on disk (its data directory): ${(suspendedCost.bytes / 1024 ** 2).toFixed(1)} MiB`,
      '',
    );
    await mkdir('bench/results', { recursive: true });
    const file = join('bench/results', `autoscaling-${date}.md`);
    await writeFile(file, `${lines.join('\n')}\n`);
    process.stdout.write(`${lines.join('\n')}\nwritten to ${file}\n`);
  } finally {
    await removePier(pier);
  }
}

await main();
