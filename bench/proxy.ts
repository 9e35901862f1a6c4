/**
 * Proxy benchmark: pgbench against one Postgres cluster (a) directly over TCP,
 * (b) through Pier's TLS proxy with a database credential as the password,
 * (c) through PgBouncer (Debian package) terminating TLS in session mode.
 * Same certificate type (ECDSA P-256) for (b) and (c); both reach Postgres
 * over its unix socket. Prints a markdown table of medians with ratios to
 * (a) and writes it to bench/results/proxy-<date>.md.
 *
 *   npm run bench:proxy            # BENCH_ROUNDS=3 BENCH_SECONDS=6 by default
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { generateSigningKey, issueDatabaseCredential } from '../src/auth/credentials.js';
import { initCluster, stopCluster, writeClusterSettings } from '../src/engine/local/cluster.js';
import { handToPostgres, type PostgresRuntime, preparePostgresRuntime } from '../src/engine/local/runtime.js';

const run = promisify(execFile);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const TCP_HOST = '127.0.0.55'; // Postgres' own TCP listener, away from anything on 127.0.0.1:5432
const PGBOUNCER_PORT = 16432;
let tlsPath = 'javascript';

interface Row {
  label: string;
  args: string[];
}

const ROWS: Row[] = [
  { label: 'select-only (-S), 8 clients', args: ['-S', '-M', 'prepared', '-c', '8', '-j', '2'] },
  { label: 'select-only (-S), 64 clients', args: ['-S', '-M', 'prepared', '-c', '64', '-j', '2'] },
  { label: 'TPC-B-like, 8 clients', args: ['-M', 'prepared', '-c', '8', '-j', '2'] },
  { label: 'TPC-B-like, 64 clients', args: ['-M', 'prepared', '-c', '64', '-j', '2'] },
  { label: 'new connections/s (-C -S), 8 clients', args: ['-C', '-S', '-c', '8', '-j', '2'] },
];

interface Target {
  name: string;
  env: Record<string, string>;
  /** CPU seconds the proxy process has used so far, in user space and in the kernel. */
  cpuSeconds?: () => Promise<CpuSeconds>;
}

/** The bench drives Debian's pgbench and compares with Debian's PgBouncer: say how to get them. */
function requireTools(): void {
  const missing = ['/usr/bin/pgbench', '/usr/sbin/pgbouncer'].filter((tool) => !existsSync(tool));
  if (missing.length > 0) {
    process.stderr.write(
      `bench:proxy needs ${missing.join(' and ')}: apt-get install -y postgresql-client pgbouncer\n`,
    );
    process.exit(1);
  }
}

async function main(): Promise<void> {
  requireTools();
  const root = await mkdtemp(join(tmpdir(), 'pier-bench-proxy-'));
  const runtime = await preparePostgresRuntime(join(tmpdir(), 'pier-test-runtime'));
  await handToPostgres(runtime, root, 0o755);
  const dataDir = join(root, 'data');
  const socketDir = join(root, 'socket');
  await mkdir(dataDir);
  await handToPostgres(runtime, dataDir, 0o700);
  await initCluster(runtime, dataDir);
  await writeClusterSettings(runtime, dataDir, {
    max_connections: 250,
    shared_buffers: '128MB',
    fsync: false,
    synchronous_commit: false,
    // Background vacuum of what a TPC-B run wrote would land on whichever run comes next.
    autovacuum: false,
  });
  // TCP for the direct baseline: trust on loopback for this throwaway cluster only.
  await writeFile(join(dataDir, 'pg_hba.conf'), 'local all all trust\nhost all all 127.0.0.0/8 trust\n');
  const postgres = await startPostgresWithTcp(runtime, dataDir, socketDir, join(root, 'postgres.log'));
  let stopBouncer: (() => void) | undefined;
  let closeProxy: (() => Promise<void>) | undefined;
  try {
    await psql(socketDir, 'postgres', 'CREATE ROLE bench LOGIN');
    await psql(socketDir, 'postgres', 'CREATE DATABASE bench OWNER bench');
    await run('/usr/bin/pgbench', [
      '-i',
      '-q',
      '-s',
      '4',
      '-h',
      socketDir,
      '-p',
      '5432',
      '-U',
      'bench',
      'bench',
    ]);

    const key = await generateSigningKey();
    const uid = randomUUID();
    const launch = (nativeTls: boolean) =>
      startProxyProcess({ tlsDir: join(root, 'tls'), socketDir, uid, publicJwk: key.publicJwk, nativeTls });
    const proxy = await launch(process.env.PIER_NATIVE_TLS !== '0');
    closeProxy = async () => proxy.stop();
    tlsPath = proxy.tlsPath;
    // With the native path in use, the same run also measures Node's TLS path, on a second proxy.
    const jsProxy = tlsPath === 'native' ? await launch(false) : undefined;
    closeProxy = async () => {
      proxy.stop();
      jsProxy?.stop();
    };
    const { token } = await issueDatabaseCredential(key, {
      subject: 'bench',
      instanceUids: [uid],
      ttlSeconds: 3600,
    });
    const bouncer = await startPgBouncer(runtime, root, socketDir);
    stopBouncer = bouncer.stop;

    const base = { PGUSER: 'bench', PGDATABASE: 'bench' };
    const targets: Target[] = [
      { name: 'direct', env: { ...base, PGHOST: TCP_HOST, PGPORT: '5432', PGSSLMODE: 'disable' } },
      {
        name: 'pier',
        env: {
          ...base,
          PGHOST: '127.0.0.1',
          PGPORT: String(proxy.port),
          PGSSLMODE: 'require',
          PGPASSWORD: token,
        },
        cpuSeconds: () => processCpuSeconds(proxy.pid),
      },
      ...(jsProxy
        ? [
            {
              name: 'pier-js',
              env: {
                ...base,
                PGHOST: '127.0.0.1',
                PGPORT: String(jsProxy.port),
                PGSSLMODE: 'require',
                PGPASSWORD: token,
              },
              cpuSeconds: () => processCpuSeconds(jsProxy.pid),
            },
          ]
        : []),
      {
        name: 'pgbouncer',
        env: {
          ...base,
          PGHOST: '127.0.0.1',
          PGPORT: String(PGBOUNCER_PORT),
          PGSSLMODE: 'require',
          PGPASSWORD: 'bench-secret',
        },
        cpuSeconds: () => processCpuSeconds(bouncer.pid),
      },
    ];
    const results = new Map<string, number[]>();
    const stealBefore = await cpuTimes();
    const cpu = new Map<string, number[]>();
    // BENCH_ROWS=0,4 and BENCH_TARGETS=pier,pgbouncer narrow a run while tuning.
    const rowFilter = process.env.BENCH_ROWS?.split(',').map(Number);
    const targetFilter = process.env.BENCH_TARGETS?.split(',');
    const rows = ROWS.filter((_, i) => !rowFilter || rowFilter.includes(i));
    const chosen = targets.filter((t) => !targetFilter || targetFilter.includes(t.name));
    // Unmeasured first: every target reaches its steady state (warm sessions, JIT) before round 1.
    for (const row of rows) {
      for (const target of chosen) await pgbench(row.args, target.env, WARMUP_SECONDS);
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const row of rows) {
        // Each round starts with another target, so no target always follows the same one.
        const order = chosen.map((_, i) => chosen[(i + round - 1) % chosen.length]);
        for (const target of order) {
          const cpuBefore = await target.cpuSeconds?.();
          const { tps, connectMs } = await pgbench(row.args, target.env);
          const id = `${row.label}|${target.name}`;
          results.set(id, [...(results.get(id) ?? []), tps]);
          let cpuNote = '';
          if (target.cpuSeconds && cpuBefore !== undefined) {
            const cpuAfter = await target.cpuSeconds();
            const perTx = (seconds: number) => (seconds / (tps * SECONDS)) * 1e6;
            const user = perTx(cpuAfter.user - cpuBefore.user);
            const sys = perTx(cpuAfter.sys - cpuBefore.sys);
            cpu.set(id, [...(cpu.get(id) ?? []), user + sys]);
            cpuNote = ` (proxy CPU ${(user + sys).toFixed(1)} µs/tx: user ${user.toFixed(1)}, kernel ${sys.toFixed(1)})`;
          }
          const connectNote = row.args.includes('-C') && connectMs ? `, ${connectMs} ms per connection` : '';
          process.stderr.write(
            `round ${round} ${row.label} ${target.name}: ${tps.toFixed(0)}${connectNote}${cpuNote}\n`,
          );
        }
      }
    }
    const stealAfter = await cpuTimes();
    const steal = (stealAfter.steal - stealBefore.steal) / (stealAfter.total - stealBefore.total);
    const report = renderReport(results, cpu, runtime, steal);
    process.stdout.write(report);
    const resultsDir = join(process.cwd(), 'bench', 'results');
    await mkdir(resultsDir, { recursive: true });
    const file = join(resultsDir, `proxy-${new Date().toISOString().slice(0, 10)}.md`);
    await writeFile(file, report);
    process.stderr.write(`written to ${file}\n`);
  } finally {
    stopBouncer?.();
    await closeProxy?.();
    postgres.kill('SIGINT');
    await stopCluster(dataDir);
    await rm(root, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function renderReport(
  results: Map<string, number[]>,
  cpu: Map<string, number[]>,
  runtime: PostgresRuntime,
  steal: number,
): string {
  const lines = [
    `# Proxy benchmark, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `pgbench 15 (Debian), scale 4, ${SECONDS} s per run, -j 2, median of ${ROUNDS} rounds (runs interleaved,`,
    `the order of targets rotating each round, after a ${WARMUP_SECONDS} s unmeasured run of each); each proxy in`,
    'its own process, CPU read from /proc;',
    `PostgreSQL ${runtime.version} (embedded), fsync off, autovacuum off; ${cpus().length} cores shared by everything;`,
    `CPU time stolen by the hypervisor during the measured rounds: ${(steal * 100).toFixed(1)}% (noise: compare within a round).`,
    `(a) direct: Postgres over TCP 127.0.0.x, no TLS. (b) Pier proxy (${tlsPath} TLS path): TLS (ECDSA P-256), JWT password,`,
    'backend over the unix socket, warm sessions on. (c) PgBouncer: TLS (same ECDSA cert), plain password,',
    'session mode, backend over the unix socket. Values are TPS; for -C rows, new connections per second.',
    "(b') Pier with Node's TLS (the JavaScript path), same run, when (b) is the native path.",
    'Ratios of medians, and "paired": the median over rounds of (b)/(c) within each round, whose runs are',
    'seconds apart on the same machine state (the steadier figure on a noisy machine).',
    '',
    "| workload | (a) direct | (b) Pier | (c) PgBouncer | (b)/(a) | (c)/(a) | (b)/(c) | (b)/(c) paired | (b') Pier, Node TLS | (b')/(c) | proxy CPU µs/tx (b) / (b') / (c) |",
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of ROWS) {
    const [a, b, c, js] = ['direct', 'pier', 'pgbouncer', 'pier-js'].map((name) =>
      median(results.get(`${row.label}|${name}`) ?? [0]),
    );
    const jsCells = js > 0 ? `${js.toFixed(0)} | ${(js / c).toFixed(2)}` : '– | –';
    const pier = results.get(`${row.label}|pier`) ?? [];
    const bouncer = results.get(`${row.label}|pgbouncer`) ?? [];
    const paired =
      pier.length && pier.length === bouncer.length ? median(pier.map((v, i) => v / bouncer[i])) : 0;
    lines.push(
      `| ${row.label} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${c.toFixed(0)} | ${(b / a).toFixed(2)} | ${(c / a).toFixed(2)} | ${(b / c).toFixed(2)} | ${paired.toFixed(2)} | ${jsCells} | ${cpuCell(cpu, row.label)} |`,
    );
  }
  lines.push('', 'All rounds (TPS):', '');
  for (const [id, values] of results)
    lines.push(`- ${id.replace('|', ' — ')}: ${values.map((v) => v.toFixed(0)).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

function cpuCell(cpu: Map<string, number[]>, label: string): string {
  const of = (name: string) => cpu.get(`${label}|${name}`);
  const cell = (values: number[] | undefined) => (values ? median(values).toFixed(1) : '–');
  return `${cell(of('pier'))} / ${cell(of('pier-js'))} / ${cell(of('pgbouncer'))}`;
}

interface CpuSeconds {
  user: number;
  sys: number;
}

/** Machine-wide CPU time from /proc/stat: all of it, and the part a hypervisor took for other guests. */
async function cpuTimes(): Promise<{ total: number; steal: number }> {
  const fields = (await readFile('/proc/stat', 'utf8'))
    .split('\n')[0]
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  // user nice system idle iowait irq softirq steal …
  return { total: fields.slice(0, 8).reduce((a, b) => a + b, 0), steal: fields[7] ?? 0 };
}

interface ProxyProcess {
  pid: number;
  port: number;
  tlsPath: string;
  stop(): void;
}

/** Starts bench/proxy-server.js and waits for the line that says it listens. */
async function startProxyProcess(config: {
  tlsDir: string;
  socketDir: string;
  uid: string;
  publicJwk: unknown;
  nativeTls: boolean;
}): Promise<ProxyProcess> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'proxy-server.js');
  const child = spawn(process.execPath, [script, JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  const { port, tlsPath } = JSON.parse(line) as { port: number; tlsPath: string };
  return { pid: child.pid ?? 0, port, tlsPath, stop: () => child.kill('SIGTERM') };
}

async function processCpuSeconds(pid: number): Promise<CpuSeconds> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat (12 and 13 after the command name)
  return { user: Number(fields[11]) / 100, sys: Number(fields[12]) / 100 };
}

interface PgbenchResult {
  tps: number;
  /** pgbench's "average connection time", ms: with -C, the latency of one connection setup. */
  connectMs?: number;
}

async function pgbench(
  args: string[],
  env: Record<string, string>,
  seconds = SECONDS,
): Promise<PgbenchResult> {
  const { stdout } = await run('/usr/bin/pgbench', [...args, '-T', String(seconds), '-n'], {
    env: { ...process.env, ...env },
    maxBuffer: 16 << 20,
  }).catch((error: Error & { stdout?: string; stderr?: string }) => {
    throw new Error(`pgbench ${args.join(' ')} failed: ${error.stderr ?? error.message}`);
  });
  const match =
    /tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/.exec(
      stdout,
    ) ?? /tps = ([\d.]+)/.exec(stdout);
  if (!match) throw new Error(`cannot read tps from pgbench output:\n${stdout}`);
  const connect = /average connection time = ([\d.]+) ms/.exec(stdout);
  return { tps: Number(match[1]), connectMs: connect ? Number(connect[1]) : undefined };
}

async function psql(socketDir: string, database: string, sql: string): Promise<void> {
  const client = new pg.Client({ host: socketDir, port: 5432, user: 'postgres', database });
  await client.connect();
  await client.query(sql);
  await client.end();
}

/** Like startCluster, plus a TCP listener for the direct baseline. */
async function startPostgresWithTcp(
  runtime: PostgresRuntime,
  dataDir: string,
  socketDir: string,
  logFile: string,
) {
  await mkdir(socketDir, { recursive: true });
  await handToPostgres(runtime, socketDir, 0o700);
  const child = spawn(
    join(runtime.binDir, 'postgres'),
    ['-D', dataDir, '-k', socketDir, '-p', '5432', '-c', `listen_addresses=${TCP_HOST}`],
    {
      stdio: ['ignore', 'ignore', 'ignore'],
      uid: runtime.user?.uid,
      gid: runtime.user?.gid,
      env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' },
      cwd: '/',
    },
  );
  void logFile;
  for (let i = 0; i < 300; i++) {
    try {
      const client = new pg.Client({ host: TCP_HOST, port: 5432, user: 'postgres', database: 'postgres' });
      await client.connect();
      await client.end();
      return child;
    } catch {
      await sleep(50);
    }
  }
  child.kill('SIGKILL');
  throw new Error('Postgres did not start');
}

async function startPgBouncer(
  runtime: PostgresRuntime,
  root: string,
  socketDir: string,
): Promise<{ pid: number; stop: () => void }> {
  const dir = join(root, 'pgbouncer');
  await mkdir(dir);
  await copyFile(join(root, 'tls', 'server.crt'), join(dir, 'server.crt'));
  await copyFile(join(root, 'tls', 'server.key'), join(dir, 'server.key'));
  await writeFile(join(dir, 'userlist.txt'), '"bench" "bench-secret"\n');
  await writeFile(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `bench = host=${socketDir} port=5432 dbname=bench user=bench`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${PGBOUNCER_PORT}`,
      'unix_socket_dir =',
      'auth_type = plain',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = session',
      'max_client_conn = 1000',
      'default_pool_size = 100',
      'client_tls_sslmode = require',
      `client_tls_cert_file = ${join(dir, 'server.crt')}`,
      `client_tls_key_file = ${join(dir, 'server.key')}`,
      'server_tls_sslmode = disable',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
  );
  for (const file of ['server.crt', 'server.key', 'userlist.txt', 'pgbouncer.ini'])
    await handToPostgres(runtime, join(dir, file), 0o600);
  await handToPostgres(runtime, dir, 0o700);
  const child = spawn('/usr/sbin/pgbouncer', [join(dir, 'pgbouncer.ini')], {
    stdio: ['ignore', 'ignore', 'ignore'],
    uid: runtime.user?.uid,
    gid: runtime.user?.gid,
    cwd: dir,
  });
  for (let i = 0; i < 100; i++) {
    try {
      const client = new pg.Client({
        host: '127.0.0.1',
        port: PGBOUNCER_PORT,
        user: 'bench',
        password: 'bench-secret',
        database: 'bench',
        ssl: { rejectUnauthorized: false },
      });
      await client.connect();
      await client.end();
      return { pid: child.pid ?? 0, stop: () => child.kill('SIGINT') };
    } catch {
      await sleep(50);
    }
  }
  child.kill('SIGKILL');
  throw new Error(`PgBouncer did not start; see ${join(dir, 'pgbouncer.log')}`);
}

await main();
