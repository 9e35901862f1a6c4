import { randomInt, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  generateSigningKey,
  issueDatabaseCredential,
  publicJwks,
  type SigningKey,
} from '../../src/auth/credentials.js';
import {
  initCluster,
  startCluster,
  stopCluster,
  writeClusterSettings,
} from '../../src/engine/local/cluster.js';
import { handToPostgres, preparePostgresRuntime } from '../../src/engine/local/runtime.js';
import {
  credentialPasswordCheck,
  type InstanceRoute,
  type PierProxy,
  type ProxyOptions,
  startProxy,
  staticDirectory,
} from '../../src/proxy/index.js';

/**
 * One real Postgres cluster (instance "db1") behind a real proxy, plus
 * instances in other states for the error paths. Shared by the proxy tests.
 */
export interface Harness {
  proxy: PierProxy;
  ca: string;
  key: SigningKey;
  db1: InstanceRoute;
  db2: InstanceRoute;
  stopped: InstanceRoute;
  directory: ReturnType<typeof staticDirectory>;
  /** db1's Postgres data directory (its postmaster.pid names the server's process). */
  dataDir: string;
  token(user: string, instances?: InstanceRoute[], ttlSeconds?: number): Promise<string>;
  /** node-postgres client options for the proxy, verifying the certificate. */
  clientConfig(user: string, password: string, extra?: Partial<pg.ClientConfig>): pg.ClientConfig;
  superuser(): Promise<pg.Client>;
  startProxy(overrides: Partial<ProxyOptions>): Promise<PierProxy>;
  close(): Promise<void>;
}

export const ISSUER = 'pier-test';

export async function startHarness(
  options: { maxConnections?: number; proxy?: Partial<ProxyOptions> } = {},
): Promise<Harness> {
  const root = await mkdtemp(join(tmpdir(), 'pier-proxy-test-'));
  const runtime = await preparePostgresRuntime(join(tmpdir(), 'pier-test-runtime'));
  await handToPostgres(runtime, root, 0o755);
  const dataDir = join(root, 'db1');
  const socketDir = join(root, 'db1-socket');
  await mkdir(dataDir);
  await handToPostgres(runtime, dataDir, 0o700);
  await initCluster(runtime, dataDir);
  await writeClusterSettings(runtime, dataDir, {
    max_connections: options.maxConnections ?? 60,
    fsync: false,
    shared_buffers: '32MB',
  });
  await startCluster(runtime, { dataDir, socketDir, logFile: join(root, 'db1.log') });
  const admin = new pg.Client({ host: socketDir, user: 'postgres', database: 'postgres' });
  try {
    await admin.connect();
    await admin.query('CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN');
    await admin.query('CREATE DATABASE app OWNER alice');
  } catch (error) {
    await stopCluster(dataDir);
    throw error;
  } finally {
    await admin.end();
  }

  // Per-instance loopback addresses: random, so concurrent test runs do not collide.
  const net = `127.${randomInt(64, 250)}.${randomInt(1, 250)}`;
  const db1: InstanceRoute = {
    name: 'db1',
    uid: randomUUID(),
    state: 'AVAILABLE',
    dnsName: 'db1.pier.test',
    address: `${net}.1`,
    socketDir,
  };
  // A second AVAILABLE instance name pointing at the same cluster: enough to test routing and audience.
  const db2: InstanceRoute = {
    ...db1,
    name: 'db2',
    uid: randomUUID(),
    dnsName: 'db2.pier.test',
    address: `${net}.2`,
  };
  const stopped: InstanceRoute = {
    name: 'sleepy',
    uid: randomUUID(),
    state: 'STOPPED',
    dnsName: 'sleepy.pier.test',
    address: `${net}.3`,
    socketDir: join(root, 'nowhere'),
  };
  const directory = staticDirectory([db1, db2, stopped]);
  const key = await generateSigningKey();
  const passwords = credentialPasswordCheck({ publicKeys: () => publicJwks([key]), issuer: ISSUER });
  const tlsDir = join(root, 'tls');
  const proxies: PierProxy[] = [];
  const launch = async (overrides: Partial<ProxyOptions>) => {
    const started = await startProxy({
      port: 0,
      tls: { dir: tlsDir },
      directory,
      passwords,
      ...options.proxy,
      ...overrides,
    });
    proxies.push(started);
    return started;
  };
  const proxy = await launch({});
  await proxy.setInstanceAddresses([db1.address!, db2.address!, stopped.address!]);
  const ca = readFileSync(proxy.caCertPath!, 'utf8');

  return {
    proxy,
    ca,
    key,
    db1,
    db2,
    stopped,
    directory,
    dataDir,
    startProxy: launch,
    async token(user, instances = [db1], ttlSeconds = 600) {
      const credential = await issueDatabaseCredential(key, {
        subject: user,
        instanceUids: instances.map((instance) => instance.uid),
        ttlSeconds,
        issuer: ISSUER,
      });
      return credential.token;
    },
    clientConfig(user, password, extra = {}) {
      return {
        host: '127.0.0.1',
        port: proxy.port,
        user,
        password,
        database: 'postgres',
        ssl: { rejectUnauthorized: true, ca, servername: db1.dnsName },
        ...extra,
      };
    },
    async superuser() {
      const client = new pg.Client({ host: socketDir, user: 'postgres', database: 'postgres' });
      await client.connect();
      return client;
    },
    async close() {
      for (const started of proxies) await started.close();
      await stopCluster(dataDir);
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Connects with node-postgres and returns the error it got, or undefined when it connected. */
export async function connectError(
  config: pg.ClientConfig,
): Promise<(Error & { code?: string; hint?: string }) | undefined> {
  const client = new pg.Client(config);
  client.on('error', () => {});
  try {
    await client.connect();
    await client.end();
    return undefined;
  } catch (error) {
    return error as Error & { code?: string };
  }
}
