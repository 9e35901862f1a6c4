import { mkdir, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { openMasterKey, SigningKeys } from '../access/signing-keys.js';
import { createApi } from '../api/app.js';
import { ActiveIdentities } from '../auth/active-identities.js';
import { BackupScheduler } from '../backups/scheduler.js';
import { LocalBackupStorage } from '../backups/storage.js';
import type { ControlConfig, ControlContext } from '../control/context.js';
import { LocalEngine, listInstanceStorage } from '../engine/local/local-engine.js';
import {
  assertReachableByPostgres,
  handToPostgres,
  preparePostgresRuntime,
} from '../engine/local/runtime.js';
import { listenError } from '../errors.js';
import { setFailureLog } from '../failures.js';
import { NodeHeartbeat } from '../nodes/service.js';
import { Reconciler } from '../reconcile/reconciler.js';
import { followChanges, SAFETY_POLL_MS, StoreChanges } from '../store/notifications.js';
import { openStore } from '../store/store.js';
import { plainHttpWarning, readApiTls } from './api-tls.js';
import { bootstrapAdmin } from './bootstrap.js';
import {
  dataDirLayout,
  ensureWritableDataDir,
  lockDataDir,
  type PierState,
  readOrCreateNodeId,
  unlockDataDir,
} from './data-dir.js';
import {
  assertStoreIdentity,
  checkStoreIdentity,
  readRecordedStoreId,
  readStoreFacts,
  recordStoreIdentity,
} from './store-identity.js';
import { startSystemStore, stopSystemStore } from './system-store.js';

export interface PierOptions {
  dataDir: string;
  host: string;
  apiPort: number;
  proxyPort: number;
  /** An external Postgres for the control-plane state instead of the embedded one. */
  storeUrl?: string;
  maxInstances: number;
  dnsSuffix?: string;
  credentialTtlSeconds: number;
  /** Shortest suspend timeout an Autoscaling endpoint may ask for (default 60 s, as Databricks). */
  minSuspendTimeoutSeconds?: number;
  /** The proxy's certificate and key (PEM files); Pier makes its own CA and certificate without them. */
  tlsCert?: string;
  tlsKey?: string;
  /** The API's certificate and key (PEM files): HTTPS instead of HTTP. Both or neither. */
  apiTlsCert?: string;
  apiTlsKey?: string;
  /** Client connections the proxy holds at once, in all and per address (default `DEFAULT_CONNECTION_CAPS`). */
  proxyConnectionCaps?: { maxConnections: number; maxConnectionsPerAddress: number };
  /** Time between scheduled base backups of each instance (a day by default). */
  baseBackupIntervalMs?: number;
  log: (message: string) => void;
}

/** A started component that `pier up` wires in (the proxy, sync workers, …); routes live in api/. */
interface PierComponent {
  /** `stopInstances`: Pier is going down for good (`pier down`), not leaving its processes to the next start. */
  close(options: { stopInstances: boolean }): Promise<void>;
  /** Facts for `pier status` (e.g. the proxy's CA path). */
  state?: Partial<PierState>;
}

export type ComponentFactory = (ctx: ControlContext, options: PierOptions) => Promise<PierComponent>;

export interface RunningPier {
  state: PierState;
  ctx: ControlContext;
  /** Stops API, reconciler and components; with `stopInstances`, every Postgres too. */
  close(options?: { stopInstances?: boolean }): Promise<void>;
}

/**
 * Starts the whole stack in this process: store, engine, reconciler, API and
 * the given components. Converges from whatever a previous (possibly killed)
 * Pier left behind in the data dir.
 */
export async function startPier(
  options: PierOptions,
  components: ComponentFactory[] = [],
): Promise<RunningPier> {
  const layout = dataDirLayout(options.dataDir);
  setFailureLog(options.log);
  const apiTls = await readApiTls(options);
  const warning = plainHttpWarning(options.host, apiTls);
  if (warning) options.log(warning);
  await ensureWritableDataDir(layout.dataDir);
  await lockDataDir(layout);
  const cleanups: (() => Promise<void>)[] = [() => unlockDataDir(layout)];
  // Without stopInstances, Postgres servers (store included) keep running and the next Pier adopts them.
  let stopInstances = false;
  const cleanup = async () => {
    for (const step of cleanups.reverse())
      await step().catch((e) => options.log(`shutdown: ${(e as Error).message}`));
  };
  try {
    const runtime = await preparePostgresRuntime(layout.runtimeDir);
    await assertReachableByPostgres(runtime, layout.dataDir);
    for (const dir of [layout.logsDir, layout.runDir]) {
      await mkdir(dir, { recursive: true });
      await handToPostgres(runtime, dir, 0o755);
    }
    // Before any store is made or changed: what this data dir holds and which store it belongs to.
    const onDisk = await listInstanceStorage(layout.instancesDir);
    const recordedStoreId = await readRecordedStoreId(layout.storeIdFile);
    let storeUrl = options.storeUrl;
    const storeLabel = options.storeUrl ? redactUrl(options.storeUrl) : `embedded, ${layout.storeDir}`;
    if (!storeUrl) {
      storeUrl = await startSystemStore(runtime, layout, {
        // A data dir that was used with a store, or holds instances, never gets a new empty one.
        mayCreate: () => {
          const verdict = checkStoreIdentity({
            recorded: recordedStoreId,
            facts: { knownInstances: new Set() },
            onDisk,
            dataDir: layout.dataDir,
            storeLabel,
          });
          return verdict.ok ? undefined : verdict.message;
        },
      });
      cleanups.push(async () => {
        if (stopInstances) await stopSystemStore(layout);
      });
    }
    const store = await openStore(storeUrl, {
      beforeMigrate: async (db) =>
        assertStoreIdentity(
          checkStoreIdentity({
            recorded: recordedStoreId,
            facts: await readStoreFacts(db),
            onDisk,
            dataDir: layout.dataDir,
            storeLabel,
          }),
        ),
    });
    cleanups.push(() => store.close());
    // Before anything is written: a wrong master key must leave the store as it was.
    const masterKey = await openMasterKey(store, layout.keysDir);
    await recordStoreIdentity(store, layout.storeIdFile);
    const admin = await bootstrapAdmin(store, layout);
    const backups = await LocalBackupStorage.open(
      layout.backupsDir,
      join(layout.runtimeDir, 'pier-wal'),
      runtime.user,
    );
    const engine = await LocalEngine.open(runtime, layout, { backups, log: options.log });
    cleanups.push(() => engine.close());
    const nodeId = await readOrCreateNodeId(layout);
    // Registered before any work is claimed, so other nodes see this one alive (and hand its pipelines back).
    const heartbeat = await NodeHeartbeat.start(store, engine, nodeId);
    cleanups.push(() => heartbeat.stop());
    const reconciler = new Reconciler(store, engine, { nodeId, log: options.log });
    const config: ControlConfig = {
      nodeId,
      maxInstances: options.maxInstances,
      dnsSuffix: options.dnsSuffix,
      credentialTtlSeconds: options.credentialTtlSeconds,
      minSuspendTimeoutSeconds: options.minSuspendTimeoutSeconds ?? 60,
    };
    const identities = new ActiveIdentities(store);
    const changes = await StoreChanges.listen(store.url);
    cleanups.push(() => changes.close());
    const keys = new SigningKeys(store, { masterKey, tokenLifetimeSeconds: config.credentialTtlSeconds });
    await keys.start();
    const stopFollowingKeys = followChanges(changes, 'signingKeys', () => keys.reload(), {
      pollMs: SAFETY_POLL_MS,
      kind: 'signing-keys.reload',
    });
    cleanups.push(async () => {
      stopFollowingKeys();
      keys.stop();
    });
    const ctx: ControlContext = { store, engine, reconciler, config, masterKey, identities, keys, changes };

    cleanups.push(async () => {
      await reconciler.stop();
      if (stopInstances) await Promise.all((await engine.listInstances()).map((uid) => engine.stop(uid)));
    });
    await reconciler.start();
    const backupSchedule = new BackupScheduler(store, engine, reconciler, {
      nodeId,
      intervalMs: options.baseBackupIntervalMs,
      now: testClock(),
      log: options.log,
    });
    backupSchedule.start();
    cleanups.push(() => backupSchedule.stop());

    const started: PierComponent[] = [];
    for (const factory of components) {
      const component = await factory(ctx, options);
      started.push(component);
      cleanups.push(() => component.close({ stopInstances }));
    }

    const facts: Partial<PierState> = Object.assign({}, ...started.map((component) => component.state ?? {}));
    const app = createApi(ctx, {
      log: options.log,
      connection: { proxyPort: facts.proxyPort ?? options.proxyPort, caCertPath: facts.caCertPath },
    });
    const listen = { fetch: app.fetch, port: options.apiPort, hostname: options.host };
    const server = apiTls
      ? serve({ ...listen, createServer: createHttpsServer, serverOptions: apiTls })
      : serve(listen);
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', (error) =>
        reject(listenError(error, options.host, options.apiPort, '--api-port')),
      );
    });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        }),
    );
    const port = (server.address() as AddressInfo).port;
    const displayHost = options.host === '0.0.0.0' ? '127.0.0.1' : options.host;
    const state: PierState = {
      pid: process.pid,
      dataDir: layout.dataDir,
      apiUrl: `${apiTls ? 'https' : 'http'}://${displayHost.includes(':') ? `[${displayHost}]` : displayHost}:${port}`,
      host: options.host,
      apiPort: port,
      proxyPort: options.proxyPort,
      adminUserName: admin.userName,
      startedAt: new Date().toISOString(),
      ...facts,
    };
    ctx.endpoints = {
      apiUrl: state.apiUrl,
      proxyPort: state.proxyPort,
      caCertPath: state.caCertPath,
      dataDir: layout.dataDir,
    };
    await heartbeat.listening(state.apiUrl);
    await writeFile(layout.stateFile, `${JSON.stringify(state, null, 2)}\n`);
    return {
      state,
      ctx,
      close: async (closeOptions = {}) => {
        stopInstances = closeOptions.stopInstances ?? false;
        await cleanup();
      },
    };
  } catch (error) {
    // A start that failed stops whatever it had started.
    stopInstances = true;
    await cleanup();
    throw error;
  }
}

/**
 * The clock the backup retention window is judged by: the real one, moved
 * by `PIER_TEST_CLOCK_OFFSET_MS` in tests (retention is counted in days).
 */
function testClock(): (() => Date) | undefined {
  const offset = Number(process.env.PIER_TEST_CLOCK_OFFSET_MS ?? 0);
  return offset ? () => new Date(Date.now() + offset) : undefined;
}

/** A store URL fit for a message: no password. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the --store-url';
  }
}
