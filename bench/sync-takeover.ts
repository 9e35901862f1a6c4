/**
 * Synced tables across Pier nodes: how long a CONTINUOUS table stands still
 * when the node that runs its pipeline dies, against the two references in
 * the same run — the steady state (that node alive) and recovery without a
 * takeover (restart the dead node and wait for it to catch up).
 *
 * Two real `pier up` (temp data dirs, loopback) share one external store
 * (a scratch Postgres). The demo table is synced CONTINUOUS into an
 * instance made through the first node. Each round:
 *   steady    — a commit (one new row) → the row in the target table;
 *   kill -9   — kill -9 of the first node, then a commit → the row there
 *               (applied by the second node, which took the pipeline over);
 *   hand back — the first node started again on its data dir → it holds
 *               the pipeline's lease again.
 * One round with SIGSTOP instead of kill -9 (a hung node: the heartbeat's
 * 15 s decide). Then the reference without a takeover: the second node
 * stopped, each round kills the first, commits and restarts it at once →
 * the row there (restart + catch-up: the least a user waits without one). Rows are read straight from the instance's socket (the
 * first node's proxy dies with it), polled every 5 ms.
 *
 *   npm run bench:sync-takeover   (BENCH_TAKEOVER_ROUNDS, default 5)
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { mergeRows } from '../src/delta/writer.js';
import { DAILY_REVENUE_KEY } from '../src/lakehouse/demo.js';
import { availableInstance } from '../test/helpers/access.js';
import { api, type PierProcess, runPier, startPier, tempDataDir } from '../test/helpers/pier.js';
import { type ExternalPostgres, startExternalPostgres } from '../test/helpers/postgres.js';

const ROUNDS = Number(process.env.BENCH_TAKEOVER_ROUNDS ?? 5);
const POLL_MS = 5;
const TIMEOUT_MS = 60_000;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

async function main() {
  let external: ExternalPostgres | undefined;
  const piers: PierProcess[] = [];
  const dirs: string[] = [];
  let target: pg.Client | undefined;
  let store: pg.Client | undefined;
  try {
    external = await startExternalPostgres('bench_takeover');
    const firstDir = await tempDataDir('pier-bench-takeover-');
    dirs.push(firstDir);
    let first = await startPier({ dataDir: firstDir, args: ['--store-url', external.url] });
    piers.push(first);
    const masterKey = (await readFile(join(firstDir, 'keys', 'master.key'), 'utf8')).trim();
    const second = await startPier({
      args: ['--store-url', external.url],
      env: { PIER_MASTER_KEY: masterKey },
    });
    piers.push(second);
    dirs.push(second.dataDir);
    const token = first.adminToken;
    const demo = await runPier(['demo', '--data-dir', firstDir]);
    if (demo.code !== 0) throw new Error(demo.stderr);
    const location = JSON.parse(demo.stdout).storage_location as string;
    const uid = await availableInstance(first, token, 'takeover-db');
    const created = await api(first, token, 'POST', '/api/2.0/database/synced_tables', {
      name: 'analytics.gold.takeover',
      database_instance_name: 'takeover-db',
      logical_database_name: 'databricks_postgres',
      spec: {
        source_table_full_name: 'analytics.gold.daily_revenue',
        primary_key_columns: DAILY_REVENUE_KEY,
        scheduling_policy: 'CONTINUOUS',
        create_database_objects_if_missing: true,
      },
    });
    if (created.status !== 200) throw new Error(JSON.stringify(created.body));
    const pipeline = (created.body.data_synchronization_status as { pipeline_id: string }).pipeline_id;
    const firstNode = (await readFile(join(firstDir, 'node-id'), 'utf8')).trim();

    store = await external.connect();
    store.on('error', () => {});
    const holder = async () =>
      (
        await store?.query<{ holder: string | null }>(
          `SELECT holder FROM leases WHERE resource = 'sync_pipeline' AND key = $1`,
          [pipeline],
        )
      )?.rows[0]?.holder;

    const connectTarget = async () => {
      const client = new pg.Client({
        host: join(firstDir, 'run', uid),
        port: 5432,
        user: 'postgres',
        database: 'databricks_postgres',
      });
      client.on('error', () => {});
      await client.connect();
      return client;
    };
    // The initial snapshot first.
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      target = await connectTarget().catch(() => undefined);
      const ready = await target
        ?.query('SELECT count(*)::int AS n FROM gold.takeover')
        .catch(() => undefined);
      if (ready && ready.rows[0].n > 0) break;
      await target?.end().catch(() => {});
      if (Date.now() > deadline) throw new Error('the synced table never came online');
      await sleep(100);
    }

    let commits = 0;
    /** Writes one new row; returns its key. */
    const commit = async () => {
      const day = new Date(Date.UTC(2031, 0, 1 + commits)).toISOString().slice(0, 10);
      await mergeRows(location, {
        key: DAILY_REVENUE_KEY,
        upserts: [{ day, region: 'takeover', orders: BigInt(commits), revenue: `${commits}.00` }],
        deletes: [],
      });
      commits++;
      return day;
    };
    /** Milliseconds from `t0` until the row of `day` is in the target table. */
    const visible = async (day: string, t0: number) => {
      for (;;) {
        // The server may restart under us (a node restart may do that): then connect again.
        target ??= await connectTarget().catch(() => undefined);
        const result = await target
          ?.query('SELECT 1 FROM gold.takeover WHERE day = $1 AND region = $2', [day, 'takeover'])
          .catch(async () => {
            await target?.end().catch(() => {});
            target = undefined;
            return undefined;
          });
        const elapsed = performance.now() - t0;
        if (result?.rowCount) return elapsed;
        if (elapsed > TIMEOUT_MS) {
          process.stderr.write(piers.map((p) => p.output()).join('\n-----\n'));
          throw new Error(`row ${day} not visible after ${TIMEOUT_MS} ms`);
        }
        await sleep(POLL_MS);
      }
    };
    const handedBack = async (t0: number) => {
      for (;;) {
        if ((await holder()) === firstNode) return performance.now() - t0;
        if (performance.now() - t0 > TIMEOUT_MS) throw new Error('never handed back');
        await sleep(POLL_MS);
      }
    };

    const steady: number[] = [];
    const killed: number[] = [];
    const back: number[] = [];
    const restarted: number[] = [];
    const loadBefore = loadavg()[0];
    for (let round = 0; round < ROUNDS; round++) {
      await sleep(1000);
      const t = performance.now();
      let day = await commit();
      steady.push(await visible(day, t));

      await first.kill();
      const t0 = performance.now();
      day = await commit();
      killed.push(await visible(day, t0));

      const t1 = performance.now();
      first = await startPier({ dataDir: firstDir, args: ['--store-url', external.url] });
      piers[0] = first;
      back.push(await handedBack(t1));
      process.stderr.write(
        `round ${round + 1}/${ROUNDS}: kill -9 → applied ${killed.at(-1)?.toFixed(0)} ms\n`,
      );
    }

    // A hung node: only the heartbeat tells.
    await sleep(1000);
    // The worst case: hung inside a transaction that holds the progress row's lock, as its sync session would.
    const zombie = new pg.Client({
      host: join(firstDir, 'run', uid),
      port: 5432,
      user: 'postgres',
      database: 'databricks_postgres',
      application_name: `pier-sync ${firstNode}`,
    });
    zombie.on('error', () => {});
    await zombie.connect();
    await zombie.query('BEGIN');
    await zombie.query(
      `SELECT 1 FROM pier_sync.progress WHERE target_schema = 'gold' AND target_table = 'takeover' FOR UPDATE`,
    );
    first.child.kill('SIGSTOP');
    const t2 = performance.now();
    const day = await commit();
    const hung = await visible(day, t2);
    await zombie.end().catch(() => {});
    first.child.kill('SIGCONT');
    const hungBack = await handedBack(performance.now());

    // The reference: no other node to take over (the second stopped), so the table waits for a restart.
    await second.stop();
    for (let round = 0; round < ROUNDS; round++) {
      await sleep(1000);
      await first.kill();
      const t0 = performance.now();
      const waiting = await commit();
      first = await startPier({ dataDir: firstDir, args: ['--store-url', external.url] });
      piers[0] = first;
      restarted.push(await visible(waiting, t0));
      process.stderr.write(
        `reference ${round + 1}/${ROUNDS}: kill -9, restart → applied ${restarted.at(-1)?.toFixed(0)} ms\n`,
      );
    }
    const loads = [loadBefore, loadavg()[0]];

    const row = (name: string, values: number[], note: string) =>
      `| ${name} | ${values.length} | ${median(values).toFixed(0)} | ${Math.min(...values).toFixed(0)} | ${Math.max(...values).toFixed(0)} | ${note} |`;
    const date = new Date().toISOString().slice(0, 10);
    const report = [
      `## Synced tables across nodes: a dead node's CONTINUOUS table (${date})`,
      '',
      `Two \`pier up\` on one external store (loopback, temp data dirs), the demo table synced CONTINUOUS into an instance of the first node. ` +
        `Times from the event (a commit; a kill and then a commit; a restart) to the new row in the target table, read from the instance's socket, polled every ${POLL_MS} ms. ` +
        `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}; 1-minute load average ${loads.map((l) => l.toFixed(1)).join(' → ')}.`,
      '',
      '| case | n | median (ms) | min (ms) | max (ms) | what it is |',
      '|---|---:|---:|---:|---:|---|',
      row('steady', steady, 'the first node alive: commit → row (the reference)'),
      row(
        'kill -9, taken over',
        killed,
        'kill -9 of the first node, then a commit → row, applied by the second node',
      ),
      row(
        'kill -9, restarted (no other node)',
        restarted,
        'the reference without a takeover: kill -9, a commit, `pier up` on the dead data dir at once → row',
      ),
      row(
        'handed back',
        back,
        'after a takeover: `pier up` on the dead data dir → it holds its pipeline again',
      ),
      row(
        'hung (SIGSTOP), taken over',
        [hung],
        'SIGSTOP inside a transaction holding the progress row lock, a commit → row: heartbeat and lease run out (15 s), the hung session is ended, the second node applies it',
      ),
      row('hung, handed back', [hungBack], 'SIGCONT → the first node holds the pipeline again'),
      '',
      `A killed node's table stands still for ${median(killed).toFixed(0)} ms (median) with a takeover, against ${median(restarted).toFixed(0)} ms when it waits for a restart made at once ` +
        `(${(median(restarted) / median(killed)).toFixed(1)}×; a restart by a person or a supervisor comes later still), and ${(median(killed) / median(steady)).toFixed(1)}× the steady commit → row time.`,
      '',
    ].join('\n');
    process.stdout.write(`\n${report}`);
    if (ROUNDS === 5) {
      const resultsDir = join(fileURLToPath(new URL('.', import.meta.url)), '../../bench/results');
      await mkdir(resultsDir, { recursive: true });
      await writeFile(join(resultsDir, `sync-takeover-${date}.md`), report);
    }
  } finally {
    await target?.end().catch(() => {});
    await store?.end().catch(() => {});
    for (const pier of piers) {
      pier.child.kill('SIGCONT');
      await pier.stop().catch(() => {});
    }
    for (const dir of dirs) {
      await runPier(['down', '--data-dir', dir]);
      await rm(dir, { recursive: true, force: true });
    }
    await external?.remove();
  }
}

await main();
