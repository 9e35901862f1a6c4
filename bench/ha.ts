/**
 * `npm run bench:ha` (also the last part of `npm run bench`): high
 * availability against a real `pier up` — failover downtime over repeated
 * kill -9 of the primary's postmaster under a write load through the proxy,
 * replication lag under pgbench TPC-B, and TPS with synchronous commit to
 * one secondary vs none in the same run. Writes bench/results/ha-<date>.md.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  getInstance,
  nodePaths,
  postmasterPid,
  proxyClient,
  streamingInstance,
  writableNodes,
} from '../test/ha/helpers.js';
import { databaseCredential } from '../test/helpers/access.js';
import { api, eventually, type PierProcess, removePier, startPier } from '../test/helpers/pier.js';

const run = promisify(execFile);
const FAILOVERS = Number(process.env.BENCH_FAILOVERS ?? 10);
const PGBENCH_SECONDS = Number(process.env.BENCH_PGBENCH_SECONDS ?? 15);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const PGBENCH = '/usr/bin/pgbench';
const NAME = 'bench-ha';

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** The middle value; of an even count, the mean of the two middle ones. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** One failover: kill -9 of the primary's postmaster while a client commits a row at a time. */
async function failoverDowntime(
  pier: PierProcess,
  uid: string,
  host: string,
  firstId: number,
): Promise<number> {
  let stopped = false;
  let acknowledged = 0;
  let killedAt = 0;
  let lastAck = 0;
  let longestGap = 0;
  let acksAfterGap = 0;
  const load = (async () => {
    let client: pg.Client | undefined;
    for (let id = firstId; !stopped; id++) {
      try {
        client ??= await proxyClient(pier, host, NAME);
        await client.query('INSERT INTO ledger (id) VALUES ($1)', [id]);
        acknowledged++;
        const now = performance.now();
        // Commits a walsender still sent before it noticed the postmaster's death are acknowledged too.
        if (killedAt && lastAck) {
          if (now - lastAck > longestGap) {
            longestGap = now - lastAck;
            acksAfterGap = 0;
          }
          acksAfterGap++;
        }
        lastAck = now;
      } catch {
        await client?.end().catch(() => {});
        client = undefined;
        await sleep(20);
      }
    }
    await client?.end().catch(() => {});
  })();
  await eventually(async () => (acknowledged >= 100 ? true : undefined), 30_000, 'writes');
  const [primary] = await writableNodes(pier, uid);
  killedAt = performance.now();
  process.kill(await postmasterPid(pier, uid, primary), 'SIGKILL');
  await eventually(
    async () => (longestGap > 0 && acksAfterGap >= 50 ? true : undefined),
    60_000,
    '50 commits after the failover',
  );
  stopped = true;
  await load;
  const [now] = await writableNodes(pier, uid);
  if (now === primary) throw new Error(`node ${primary} is still the primary: no failover happened`);
  return longestGap;
}

interface PgbenchResult {
  tps: number;
}

async function pgbench(env: NodeJS.ProcessEnv, args: string[]): Promise<PgbenchResult> {
  const { stdout } = await run(PGBENCH, [...args], { env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
  const match = /tps = ([\d.]+)/.exec(stdout);
  if (!match) throw new Error(`cannot read tps from pgbench output:\n${stdout}`);
  return { tps: Number(match[1]) };
}

/** Samples the secondaries' lag on the primary while `work` runs: bytes behind and replay_lag. */
async function sampleLag<T>(socketDir: string, work: Promise<T>) {
  const client = new pg.Client({ host: socketDir, user: 'postgres', database: 'postgres' });
  await client.connect();
  const bytes: number[] = [];
  const replayMs: number[] = [];
  let done = false;
  void work.finally(() => {
    done = true;
  });
  while (!done) {
    const { rows } = await client.query<{ behind: string; replay_ms: number | null }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::text AS behind,
              extract(epoch FROM replay_lag) * 1000 AS replay_ms
         FROM pg_stat_replication WHERE state = 'streaming'`,
    );
    for (const row of rows) {
      // Bytes behind fit a double easily here; the LSNs themselves stay text.
      bytes.push(Number(row.behind));
      if (row.replay_ms !== null) replayMs.push(Number(row.replay_ms));
    }
    await sleep(200);
  }
  await client.end();
  return { result: await work, bytes, replayMs };
}

async function main(): Promise<void> {
  if (!existsSync(PGBENCH)) {
    console.error(`${PGBENCH} is missing: apt-get install postgresql-client`);
    process.exit(1);
  }
  const pier = await startPier();
  try {
    const created = await api(pier, pier.adminToken, 'POST', '/api/2.0/database/instances', {
      name: NAME,
      capacity: 'CU_1',
      node_count: 2,
    });
    if (created.status !== 200) throw new Error(JSON.stringify(created.body));
    const instance = await streamingInstance(pier, NAME, 2);
    const host = instance.read_write_dns as string;
    const setup = await proxyClient(pier, host, NAME);
    await setup.query('CREATE TABLE ledger (id int PRIMARY KEY)');
    await setup.end();

    const downtimes: number[] = [];
    const reclones: number[] = [];
    for (let i = 0; i < FAILOVERS; i++) {
      downtimes.push(await failoverDowntime(pier, instance.uid, host, (i + 1) * 1_000_000));
      const started = performance.now();
      await streamingInstance(pier, NAME, 2, 120_000);
      reclones.push(performance.now() - started);
      console.log(`failover ${i + 1}: ${downtimes.at(-1)?.toFixed(0)} ms downtime`);
    }

    // pgbench TPC-B through the proxy, as the admin with a database credential.
    const env = {
      PGHOST: host,
      PGPORT: String(pier.proxyPort),
      PGUSER: 'admin@pier.local',
      PGDATABASE: 'postgres',
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: pier.caCertPath,
      PGPASSWORD: await databaseCredential(pier, pier.adminToken, NAME),
    };
    await run(PGBENCH, ['-i', '-s', '4', '-q'], { env: { ...process.env, ...env } });
    const [primary] = await writableNodes(pier, instance.uid);
    const superuser = nodePaths(pier, instance.uid, primary).socketDir;
    const setCommit = async (mode: 'on' | 'local') => {
      const client = new pg.Client({ host: superuser, user: 'postgres', database: 'postgres' });
      await client.connect();
      await client.query(`ALTER ROLE "admin@pier.local" SET synchronous_commit = ${mode}`);
      // A role's settings apply when a session starts: end the proxy's warm sessions of the last mode.
      await client.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'admin@pier.local'",
      );
      await sleep(200);
      await client.end();
    };
    const tps: Record<'on' | 'local', number[]> = { on: [], local: [] };
    const lagBytes: number[] = [];
    const lagMs: number[] = [];
    const args = ['-c', '4', '-j', '2', '-T', String(PGBENCH_SECONDS), '-n'];
    for (let round = 0; round < ROUNDS; round++) {
      // A B B A: the load of a shared machine hits both alike.
      for (const mode of round % 2 === 0 ? (['on', 'local'] as const) : (['local', 'on'] as const)) {
        await setCommit(mode);
        const sampled = await sampleLag(superuser, pgbench(env, args));
        tps[mode].push(sampled.result.tps);
        if (mode === 'on') {
          lagBytes.push(...sampled.bytes);
          lagMs.push(...sampled.replayMs);
        }
        console.log(`pgbench synchronous_commit=${mode}: ${sampled.result.tps.toFixed(0)} tps`);
      }
    }
    await setCommit('on');
    const state = await getInstance(pier, NAME);

    const date = new Date().toISOString().slice(0, 10);
    const sorted = [...downtimes].sort((a, b) => a - b).map((n) => n.toFixed(0));
    const report = [
      `# High availability — ${date}`,
      '',
      `One instance, CU_1, node_count 2 (primary + one synchronous secondary), on ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), load average ${loadavg()[0].toFixed(1)} at the end; Postgres ${state.pg_version}.`,
      '',
      '## Failover downtime',
      '',
      `${FAILOVERS} failovers, each a kill -9 of the primary's postmaster while one client commits one row at a time through the proxy (reconnecting after each error). Downtime = the longest time without an acknowledged commit after the kill; the goal is p50 ≤ 5 s. Every failover then waits until the old primary is re-cloned from a base backup and streams again.`,
      '',
      '| measure | p50 | p95 | min | max |',
      '|---|---|---|---|---|',
      `| downtime | ${median(downtimes).toFixed(0)} ms | ${percentile(downtimes, 95).toFixed(0)} ms | ${Math.min(...downtimes).toFixed(0)} ms | ${Math.max(...downtimes).toFixed(0)} ms |`,
      `| old primary re-cloned and streaming again (from the end of the load) | ${median(reclones).toFixed(0)} ms | ${percentile(reclones, 95).toFixed(0)} ms | ${Math.min(...reclones).toFixed(0)} ms | ${Math.max(...reclones).toFixed(0)} ms |`,
      '',
      `All downtimes, sorted: ${sorted.join(', ')} ms.`,
      '',
      '## pgbench TPC-B through the proxy',
      '',
      `pgbench (Debian) scale 4, 4 clients, -j 2, ${PGBENCH_SECONDS} s per run, ${ROUNDS} rounds of each mode interleaved (A B B A), same instance, same run. \`synchronous_commit = on\` (Pier's default with a streaming secondary: each commit waits until the secondary flushed it) vs \`local\` (the commit waits for the primary's disk only), set per role; at each switch the role's sessions, the proxy's warm ones included, are ended so every run starts in its mode.`,
      '',
      '| synchronous commit | TPS (median) | runs |',
      '|---|---|---|',
      `| to one secondary (on) | ${median(tps.on).toFixed(0)} | ${tps.on.map((n) => n.toFixed(0)).join(', ')} |`,
      `| none (local) | ${median(tps.local).toFixed(0)} | ${tps.local.map((n) => n.toFixed(0)).join(', ')} |`,
      `| cost of synchronous commit (median of the per-round ratios) | ${((1 - median(tps.on.map((on, i) => on / tps.local[i]))) * 100).toFixed(1)}% | ${tps.on.map((on, i) => `${((1 - on / tps.local[i]) * 100).toFixed(1)}%`).join(', ')} |`,
      '',
      `Replication lag during the synchronous runs, sampled every 200 ms on the primary (n=${lagBytes.length}): bytes of WAL not yet replayed p50 ${median(lagBytes)} / p95 ${percentile(lagBytes, 95)} / max ${Math.max(...lagBytes)}; replay_lag p50 ${median(lagMs).toFixed(1)} ms / p95 ${percentile(lagMs, 95).toFixed(1)} ms / max ${Math.max(...lagMs).toFixed(1)} ms.`,
      '',
    ].join('\n');
    const resultsDir = join(process.cwd(), 'bench', 'results');
    await mkdir(resultsDir, { recursive: true });
    const file = join(resultsDir, `ha-${date}.md`);
    await writeFile(file, report);
    console.log(report);
    console.log(`written to ${file}`);
  } finally {
    await removePier(pier);
  }
}

await main();
