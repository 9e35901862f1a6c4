import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Command, Option } from 'commander';
import { stopMarkedProcesses } from '../apps/process.js';
import { processAlive, stopCluster } from '../engine/local/cluster.js';
import { PierError } from '../errors.js';
import { DEFAULT_CONNECTION_CAPS } from '../proxy/index.js';
import {
  dataDirLayout,
  type PierState,
  readAdminToken,
  readPid,
  readState,
  resolveDataDir,
} from '../server/data-dir.js';
import { type ComponentFactory, startPier } from '../server/pier.js';
import { printJson } from './output.js';

interface UpOptions {
  dataDir?: string;
  apiPort: number;
  proxyPort: number;
  host: string;
  detach?: boolean;
  storeUrl?: string;
  maxInstances: number;
  dnsSuffix?: string;
  credentialTtl: number;
  tlsCert?: string;
  tlsKey?: string;
  apiTlsCert?: string;
  apiTlsKey?: string;
  proxyMaxConnections: number;
  proxyMaxConnectionsPerAddress: number;
  minSuspendTimeout: number;
  baseBackupInterval: number;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new PierError('INVALID_PARAMETER_VALUE', `"${value}" is not a port number.`);
  return n;
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new PierError('INVALID_PARAMETER_VALUE', `"${value}" must be a positive integer.`);
  return n;
}

/** Databricks' database credentials live one hour; Pier allows up to a day. */
const MAX_CREDENTIAL_TTL_SECONDS = 24 * 3600;

function credentialTtl(value: string): number {
  const n = positive(value);
  if (n > MAX_CREDENTIAL_TTL_SECONDS) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `--credential-ttl ${value} is too long: at most ${MAX_CREDENTIAL_TTL_SECONDS} seconds (a day). Clients refresh credentials; keep them short-lived.`,
    );
  }
  return n;
}

/** `24h`, `30m`, `90s`: a duration in milliseconds, at least a minute. */
function duration(value: string): number {
  const match = /^(\d+)(s|m|h|d)$/.exec(value);
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const ms = match ? Number(match[1]) * unit[match[2] as keyof typeof unit] : Number.NaN;
  if (!(ms >= 60_000))
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `"${value}" must be a duration of at least a minute, e.g. 24h, 30m or 90s.`,
    );
  return ms;
}

const timestamp = () => new Date().toISOString();

/** `pier up`, `pier down`, `pier status`. */
export function registerServerCommands(program: Command, components: ComponentFactory[]): void {
  program
    .command('up')
    .description('Run Pier (API, reconciler, proxy) in the foreground, or in the background with --detach.')
    .addOption(new Option('--api-port <port>', 'REST API port.').default(7070).argParser(port))
    .addOption(new Option('--proxy-port <port>', 'Postgres (TLS) proxy port.').default(5432).argParser(port))
    .option('--host <address>', 'Address to listen on.', '127.0.0.1')
    .option('--detach', 'Start in the background and return once ready.')
    .addOption(
      new Option('--store-url <url>', 'External Postgres for control-plane state.').env('PIER_STORE_URL'),
    )
    .addOption(
      new Option('--max-instances <n>', 'Instance limit per workspace.').default(10).argParser(positive),
    )
    .option(
      '--dns-suffix <suffix>',
      'Give instances read_write_dns <name>.<suffix> instead of a loopback address.',
    )
    .addOption(
      new Option('--credential-ttl <seconds>', 'Lifetime of database credentials (at most 86400).')
        .default(3600)
        .argParser(credentialTtl),
    )
    .option('--tls-cert <file>', 'PEM certificate for the proxy (default: one Pier creates).')
    .option('--tls-key <file>', 'PEM private key for --tls-cert.')
    .option('--api-tls-cert <file>', 'PEM certificate (chain) for the REST API: serve HTTPS instead of HTTP.')
    .option('--api-tls-key <file>', 'PEM private key for --api-tls-cert.')
    .addOption(
      new Option('--proxy-max-connections <n>', 'Client connections the proxy holds at once; more get 53300.')
        .default(DEFAULT_CONNECTION_CAPS.maxConnections)
        .argParser(positive),
    )
    .addOption(
      new Option('--proxy-max-connections-per-address <n>', 'Of those, from one client address.')
        .default(DEFAULT_CONNECTION_CAPS.maxConnectionsPerAddress)
        .argParser(positive),
    )
    .addOption(
      new Option(
        '--base-backup-interval <duration>',
        'Time between scheduled base backups of each instance (e.g. 24h, 6h, 30m).',
      )
        .default(24 * 3_600_000, '24h')
        .argParser(duration),
    )
    .addOption(
      new Option(
        '--min-suspend-timeout <seconds>',
        'Shortest suspend_timeout_duration an Autoscaling endpoint may ask for (Databricks: 60).',
      )
        .default(60)
        .argParser(positive),
    )
    .action(async (options: UpOptions, command: Command) => {
      const dataDir = resolveDataDir((command.optsWithGlobals() as { dataDir?: string }).dataDir);
      if (options.detach) return detach(dataDir);
      await runForeground(dataDir, options, components);
    });

  program
    .command('down')
    .description('Stop Pier and every Postgres it started.')
    .action(async (_options: unknown, command: Command) => {
      const dataDir = resolveDataDir((command.optsWithGlobals() as { dataDir?: string }).dataDir);
      await down(dataDir);
    });

  program
    .command('status')
    .description('Show endpoints and the admin credentials of the local Pier.')
    .addOption(
      new Option('-o, --output <format>', 'text, env or json')
        .choices(['text', 'env', 'json'])
        .default('text'),
    )
    .action(async (options: { output: string }, command: Command) => {
      const dataDir = resolveDataDir((command.optsWithGlobals() as { dataDir?: string }).dataDir);
      await status(dataDir, options.output);
    });
}

async function runForeground(
  dataDir: string,
  options: UpOptions,
  components: ComponentFactory[],
): Promise<void> {
  const log = (message: string) => process.stdout.write(`${timestamp()} ${message}\n`);
  log(`starting Pier on ${dataDir}`);
  const pier = await startPier(
    {
      dataDir,
      host: options.host,
      apiPort: options.apiPort,
      proxyPort: options.proxyPort,
      storeUrl: options.storeUrl,
      maxInstances: options.maxInstances,
      dnsSuffix: options.dnsSuffix,
      credentialTtlSeconds: options.credentialTtl,
      minSuspendTimeoutSeconds: options.minSuspendTimeout,
      tlsCert: options.tlsCert,
      tlsKey: options.tlsKey,
      apiTlsCert: options.apiTlsCert,
      apiTlsKey: options.apiTlsKey,
      proxyConnectionCaps: {
        maxConnections: options.proxyMaxConnections,
        maxConnectionsPerAddress: options.proxyMaxConnectionsPerAddress,
      },
      baseBackupIntervalMs: options.baseBackupInterval,
      log,
    },
    components,
  );
  log(`API      ${pier.state.apiUrl}`);
  log(
    `Postgres ${pier.state.host}:${pier.state.proxyPort} (TLS required; ${pier.state.proxyTlsPath} TLS path)`,
  );
  if (pier.state.caCertPath) log(`CA cert  ${pier.state.caCertPath} (for sslmode=verify-full)`);
  log('ready. In another shell: eval "$(npx pier status -o env)"');
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping every instance and the store`);
    await pier.close({ stopInstances: true });
    log('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

/** Re-runs `pier up` without --detach in the background; returns once it serves requests. */
async function detach(dataDir: string): Promise<void> {
  const layout = dataDirLayout(dataDir);
  await mkdir(layout.logsDir, { recursive: true });
  const logFile = join(layout.logsDir, 'pier.log');
  const out = openSync(logFile, 'a');
  const args = process.argv.slice(1).filter((arg) => arg !== '--detach');
  const child = spawn(process.execPath, args, {
    detached: true,
    stdio: ['ignore', out, out],
    env: process.env,
  });
  child.unref();
  let exited: number | null = null;
  child.once('exit', (code) => {
    exited = code ?? 1;
  });
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (exited !== null) {
      const tail = (await readFile(logFile, 'utf8')).trim().split('\n').slice(-5).join('\n');
      throw new PierError('INTERNAL_ERROR', `Pier exited while starting (see ${logFile}):\n${tail}`);
    }
    const state = await readState(layout);
    if (state && state.pid === child.pid && (await healthy(state))) {
      await status(dataDir, 'text');
      process.exit(0);
    }
    await sleep(100);
  }
  throw new PierError('INTERNAL_ERROR', `Pier did not become ready within 120 s; see ${logFile}.`);
}

/**
 * Whether the Pier we started answers. Over HTTPS the certificate is not
 * checked: its CA may be one only the operator's clients trust, and this
 * probe of our own child sends nothing secret.
 */
function healthy(state: PierState): Promise<boolean> {
  const get = state.apiUrl.startsWith('https:') ? httpsGet : httpGet;
  return new Promise((resolve) => {
    const request = get(
      `${state.apiUrl}/health`,
      { rejectUnauthorized: false, timeout: 2000 },
      (response) => {
        response.resume();
        resolve(response.statusCode === 200);
      },
    );
    request.on('error', () => resolve(false));
    request.on('timeout', () => request.destroy());
  });
}

/** Stops the running Pier; if it was killed, stops the Postgres servers it left behind. */
async function down(dataDir: string): Promise<void> {
  const layout = dataDirLayout(dataDir);
  const pid = await readPid(layout.pidFile);
  if (pid && processAlive(pid)) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 60_000;
    while (processAlive(pid) && Date.now() < deadline) await sleep(50);
    if (processAlive(pid))
      throw new PierError('INTERNAL_ERROR', `Pier (pid ${pid}) did not stop within 60 s.`);
  }
  // Whatever a killed Pier left running: every instance, the template, the store.
  const instanceDirs = await readdir(layout.instancesDir).catch(() => [] as string[]);
  await Promise.all(instanceDirs.map((uid) => stopCluster(join(layout.instancesDir, uid))));
  await stopCluster(`${layout.templateDir}.partial`);
  await stopCluster(layout.storeDir);
  // And the app processes it left running (each carries this node's id).
  const nodeId = (await readFile(layout.nodeIdFile, 'utf8').catch(() => '')).trim();
  if (nodeId) await stopMarkedProcesses(nodeId);
  process.stdout.write(`Pier on ${dataDir} is stopped.\n`);
}

async function status(dataDir: string, format: string): Promise<void> {
  const layout = dataDirLayout(dataDir);
  const state = await readState(layout);
  if (!state || !processAlive(state.pid)) {
    throw new PierError('INVALID_STATE', `Pier is not running on ${dataDir}. Start it with \`npx pier up\`.`);
  }
  const token = await readAdminToken(layout);
  if (format === 'env') {
    process.stdout.write(`export DATABRICKS_HOST=${state.apiUrl}\nexport DATABRICKS_TOKEN=${token ?? ''}\n`);
    if (state.caCertPath) process.stdout.write(`export PGSSLROOTCERT=${state.caCertPath}\n`);
    return;
  }
  if (format === 'json') {
    printJson({ ...state, databricks_host: state.apiUrl, databricks_token: token });
    return;
  }
  const lines = [
    `Pier is running (pid ${state.pid}) on ${state.dataDir}`,
    `  API          ${state.apiUrl}`,
    `  Postgres     ${state.host}:${state.proxyPort} (TLS required)`,
    ...(state.proxyTlsPath ? [`  TLS path     ${state.proxyTlsPath}`] : []),
    ...(state.caCertPath ? [`  CA cert      ${state.caCertPath}`] : []),
    `  admin        ${state.adminUserName}`,
    `  DATABRICKS_HOST=${state.apiUrl}`,
    `  DATABRICKS_TOKEN=${token ?? '(missing)'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
