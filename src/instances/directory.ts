import pg from 'pg';
import { checkScramPassword } from '../auth/scram.js';
import type { ControlConfig } from '../control/context.js';
import type { Engine } from '../engine/engine.js';
import { noteFailure } from '../failures.js';
import { type InstanceRoute, KeyedSlots, type ProxyDirectory, type WakingDirectory } from '../proxy/index.js';
import type { Store } from '../store/store.js';
import { reportedState } from './state.js';
import { type InstanceRow, listNodeInstances, topologyOf } from './store.js';
import { instanceDnsName, readOnlyDnsName } from './view.js';

/** Native-login checks run at once per instance: each holds a superuser session for a moment. */
const NATIVE_CHECKS_PER_INSTANCE = 2;
const NATIVE_CHECK_TIMEOUT_MS = 5000;

/**
 * The proxy's view of the instances (its ProxyDirectory): an in-memory
 * routing table rebuilt from the store (the source of truth) whenever the
 * reconciler here acts and on every change to the instances in any Pier
 * process (NOTIFY, see store/notifications.ts). Lookups never wait.
 */
export class InstanceDirectory implements ProxyDirectory {
  private byNameMap = new Map<string, InstanceRoute>();
  private byUidMap = new Map<string, InstanceRoute>();
  private byDnsMap = new Map<string, InstanceRoute>();
  private byAddressMap = new Map<string, InstanceRoute>();
  private suspendTimeoutMap = new Map<string, number>();
  /** Scale to zero (instances/scale-to-zero.ts), when installed. */
  waking?: WakingDirectory;
  private refreshing: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly store: Store,
    /** Where each instance's Postgres socket is (the engine knows). */
    private readonly engine: Pick<Engine, 'socketDir' | 'nodeSocketDir'>,
    private readonly config: ControlConfig,
    /** Called with every instance address after each refresh (the proxy binds them). */
    private readonly onAddresses: (addresses: string[]) => Promise<void>,
  ) {}

  byName(name: string) {
    return this.byNameMap.get(name);
  }
  byUid(uid: string) {
    return this.byUidMap.get(uid);
  }
  byDnsName(host: string) {
    return this.byDnsMap.get(host.toLowerCase());
  }
  byAddress(ip: string) {
    return this.byAddressMap.get(ip);
  }
  /** Instances that suspend when idle: uid → seconds. */
  suspendTimeouts() {
    return this.suspendTimeoutMap;
  }

  createRoleHint(instance: InstanceRoute, role: string): string {
    return `Create it with: pier database create-database-instance-role ${instance.name} --json '{"name": "${role}", "identity_type": "USER"}'`;
  }

  /** Native login: see `nativePasswordCheck`. */
  readonly verifyNativePassword = nativePasswordCheck();

  /** Sets a state ahead of the store (the reconciler is about to write it). */
  setState(uid: string, state: string): void {
    const route = this.byUidMap.get(uid);
    if (route) route.state = state;
    for (const each of this.byDnsMap.values()) if (each.uid === uid) each.state = state;
  }

  /** Rebuilds the table from the store; concurrent calls coalesce. */
  async refresh(): Promise<void> {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.again = false;
        await this.load();
      } while (this.again);
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async load(): Promise<void> {
    // Only this node's instances: their sockets are on this host.
    const rows = await listNodeInstances(this.store, this.config.nodeId);
    const routes = rows.map(
      (row): InstanceRoute => ({
        name: row.name,
        uid: row.uid,
        state: reportedState(row),
        dnsName: instanceDnsName(row, this.config),
        ...(row.address ? { address: row.address } : {}),
        socketDir: this.engine.socketDir(row.uid),
        nativeLogin: row.spec.enable_pg_native_login,
        // Suspended, or waking up: a client waits for it rather than being refused.
        ...(!row.spec.deleted &&
        (row.spec.suspended || (row.spec.suspend_timeout_seconds && !row.spec.stopped))
          ? { wakeOnConnect: true }
          : {}),
      }),
    );
    // Read-only routes are found by their DNS name or address only; by name or uid a client reaches the primary.
    const readOnly = rows.flatMap((row, i) =>
      row.spec.enable_readable_secondaries ? [this.readOnlyRoute(row, routes[i])] : [],
    );
    const all = [...routes, ...readOnly];
    this.suspendTimeoutMap = new Map(
      rows.flatMap((row) =>
        row.spec.suspend_timeout_seconds && !row.spec.deleted
          ? [[row.uid, row.spec.suspend_timeout_seconds] as const]
          : [],
      ),
    );
    this.byNameMap = new Map(routes.map((r) => [r.name, r]));
    this.byUidMap = new Map(routes.map((r) => [r.uid, r]));
    this.byDnsMap = new Map(all.map((r) => [r.dnsName.toLowerCase(), r]));
    this.byAddressMap = new Map(all.flatMap((r) => (r.address ? [[r.address, r] as const] : [])));
    await this.onAddresses(all.flatMap((r) => (r.address ? [r.address] : [])));
  }

  private readOnlyRoute(row: InstanceRow, primary: InstanceRoute): InstanceRoute {
    const { streaming, lagging = [] } = topologyOf(row.status);
    const { address: _primaryAddress, ...rest } = primary;
    return {
      ...rest,
      dnsName: readOnlyDnsName(row, this.config),
      ...(row.read_only_address ? { address: row.read_only_address } : {}),
      // A secondary whose replay is far behind serves no new reader (reconcile/nodes.ts, READ_LAG_LIMIT_MS).
      secondarySocketDirs: streaming
        .filter((node) => !lagging.includes(node))
        .map((node) => this.engine.nodeSocketDir(row.uid, node)),
    };
  }
}

/**
 * Native login's check: the password must match the role's SCRAM verifier in
 * the instance itself. It runs before the client is authenticated, so it is
 * bounded: a few checks per instance at a time (the rest wait their turn),
 * a superuser session only long enough to read the verifier, every step
 * under a time limit, and the PBKDF2 work, done after that session closed,
 * capped (`MAX_SCRAM_ITERATIONS`).
 *
 * @example
 * const verify = nativePasswordCheck();
 * await verify(route, 'app_user', 'correct horse') // 'match' | 'mismatch' | 'too_costly'
 */
export function nativePasswordCheck(): NonNullable<ProxyDirectory['verifyNativePassword']> {
  const checks = new KeyedSlots();
  return async (instance, user, password) => {
    const release = await checks.acquire(instance.uid, () => NATIVE_CHECKS_PER_INSTANCE);
    try {
      return await checkScramPassword(password, await readVerifier(instance, user));
    } finally {
      release();
    }
  };
}

async function readVerifier(instance: InstanceRoute, user: string): Promise<string | null> {
  const client = new pg.Client({
    host: instance.socketDir,
    port: 5432,
    user: 'postgres',
    database: 'postgres',
    connectionTimeoutMillis: NATIVE_CHECK_TIMEOUT_MS,
    query_timeout: NATIVE_CHECK_TIMEOUT_MS,
    application_name: 'pier native login check',
  });
  client.on('error', () => {}); // a failure surfaces through connect or query
  try {
    await client.connect();
    const { rows } = await client.query<{ rolpassword: string | null }>(
      'SELECT rolpassword FROM pg_authid WHERE rolname = $1 AND rolcanlogin AND (rolvaliduntil IS NULL OR rolvaliduntil > now())',
      [user],
    );
    return rows.length === 1 ? rows[0].rolpassword : null;
  } finally {
    await client.end().catch((error) => noteFailure('native-login.close', error));
  }
}
