/**
 * `npm run bench`: instance lifecycle timings against a real `pier up`, with
 * the raw cost of making a Postgres server (initdb + start) measured in the
 * same run as the reference.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { initCluster, startCluster, stopCluster } from '../src/engine/local/cluster.js';
import { handToPostgres, preparePostgresRuntime } from '../src/engine/local/runtime.js';
import { api, removePier, startPier } from '../test/helpers/pier.js';
import { clientPoolTable } from './client-pool.js';

const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 20);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const ms = (n: number) => `${n.toFixed(0)} ms`;

async function until<T>(check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resident memory (kB) of a postmaster and its children. */
function residentKb(postmasterPid: number): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (Number(entry) !== postmasterPid && ppid !== postmasterPid) continue;
      // Pss shares shared memory fairly between the processes that map it.
      const rollup = readFileSync(`/proc/${entry}/smaps_rollup`, 'utf8');
      total += Number(/Pss:\s+(\d+)/.exec(rollup)?.[1] ?? 0);
    } catch {
      // process ended
    }
  }
  return total;
}

async function referenceInitdbStart(runs: number): Promise<number[]> {
  const root = join(process.env.TMPDIR ?? '/tmp', `pier-bench-ref-${process.pid}`);
  await mkdir(root, { recursive: true });
  const runtime = await preparePostgresRuntime(join(root, 'runtime'));
  await handToPostgres(runtime, root, 0o755);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const dataDir = join(root, `c${i}`);
    await mkdir(dataDir);
    await handToPostgres(runtime, dataDir, 0o700);
    const started = performance.now();
    await initCluster(runtime, dataDir);
    await startCluster(runtime, { dataDir, socketDir: join(root, `s${i}`), logFile: join(root, `l${i}`) });
    const client = new pg.Client({ host: join(root, `s${i}`), user: 'postgres', database: 'postgres' });
    await client.connect();
    await client.query('SELECT 1');
    await client.end();
    times.push(performance.now() - started);
    await stopCluster(dataDir);
  }
  await rm(root, { recursive: true, force: true });
  return times;
}

async function main() {
  const pier = await startPier({ args: ['--max-instances', String(INSTANCES + 5)] });
  const token = pier.adminToken;
  const ca = readFileSync(pier.caCertPath!, 'utf8');
  const createToAvailable: number[] = [];
  const createToQuery: number[] = [];
  const uids: string[] = [];
  try {
    for (let i = 0; i < INSTANCES; i++) {
      const name = `bench-${i}`;
      const started = performance.now();
      const created = await api(pier, token, 'POST', '/api/2.0/database/instances', {
        name,
        capacity: 'CU_1',
      });
      const uid = created.body.uid as string;
      uids.push(uid);
      // First successful query, as a user makes it: a database credential, then
      // TLS through the proxy to read_write_dns, polled independently of the state.
      const queried = (async () => {
        const credential = await api(pier, token, 'POST', '/api/2.0/database/credentials', {
          instance_names: [name],
        });
        await until(async () => {
          const client = new pg.Client({
            host: created.body.read_write_dns as string,
            port: pier.proxyPort,
            user: 'admin@pier.local',
            password: credential.body.token as string,
            database: 'postgres',
            ssl: { ca },
          });
          try {
            await client.connect();
            await client.query('SELECT 1');
            return true;
          } catch {
            return undefined;
          } finally {
            await client.end().catch(() => {});
          }
        });
        return performance.now() - started;
      })();
      await until(async () => {
        const { body } = await api(pier, token, 'GET', `/api/2.0/database/instances/${name}`);
        return body.state === 'AVAILABLE' ? true : undefined;
      });
      createToAvailable.push(performance.now() - started);
      createToQuery.push(await queried);
    }

    const stopTimes: number[] = [];
    const startTimes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const name = `bench-${i}`;
      for (const [stopped, target, times] of [
        [true, 'STOPPED', stopTimes],
        [false, 'AVAILABLE', startTimes],
      ] as const) {
        const started = performance.now();
        await api(pier, token, 'PATCH', `/api/2.0/database/instances/${name}?update_mask=stopped`, {
          stopped,
        });
        await until(async () => {
          const { body } = await api(pier, token, 'GET', `/api/2.0/database/instances/${name}`);
          return body.state === target ? true : undefined;
        });
        times.push(performance.now() - started);
      }
    }

    await new Promise((r) => setTimeout(r, 2000));
    const pid = Number(
      readFileSync(join(pier.dataDir, 'instances', uids[INSTANCES - 1], 'postmaster.pid'), 'utf8').split(
        '\n',
      )[0],
    );
    const idleKb = residentKb(pid);
    const reference = await referenceInitdbStart(5);

    const rows = [
      ['create → AVAILABLE (API state)', createToAvailable],
      ['create → first query (credential + TLS through the proxy)', createToQuery],
      ['stop → STOPPED', stopTimes],
      ['start → AVAILABLE', startTimes],
      ['reference: initdb + start + first query (no template)', reference],
    ] as const;
    const table = [
      `# Instance lifecycle — ${new Date().toISOString().slice(0, 10)}`,
      '',
      `${INSTANCES} instances created one after another (CU_1) on a ${
        readFileSync('/proc/cpuinfo', 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('processor')).length
      }-core machine; Postgres ${(await api(pier, token, 'GET', `/api/2.0/database/instances/bench-0`)).body.pg_version}.`,
      '',
      '| measure | n | p50 | p95 | p50 vs reference |',
      '|---|---|---|---|---|',
      ...rows.map(
        ([label, values]) =>
          `| ${label} | ${values.length} | ${ms(percentile(values, 50))} | ${ms(percentile(values, 95))} | ${(percentile(values, 50) / percentile(reference, 50)).toFixed(2)} |`,
      ),
      '',
      `Idle instance memory (proportional set size of the postmaster and its children, after 2 s idle): ${(idleKb / 1024).toFixed(1)} MiB.`,
      '',
      await clientPoolTable(pier, 'bench-0'),
    ].join('\n');
    process.stdout.write(`${table}\n`);
    await mkdir('bench/results', { recursive: true });
    await writeFile(`bench/results/instances-${new Date().toISOString().slice(0, 10)}.md`, table);
  } finally {
    await removePier(pier);
  }
}

await main();
