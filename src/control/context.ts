import type { SigningKeys } from '../access/signing-keys.js';
import type { ActiveIdentities } from '../auth/active-identities.js';
import type { MasterKey } from '../auth/master-key.js';
import type { Engine } from '../engine/engine.js';
import type { Reconciler } from '../reconcile/reconciler.js';
import type { StoreChanges } from '../store/notifications.js';
import type { Store } from '../store/store.js';

/** Settings the control plane needs from `pier up`. */
export interface ControlConfig {
  /** At most this many instances per workspace (RESOURCE_EXHAUSTED past it). */
  maxInstances: number;
  /**
   * How clients reach an instance. Without a suffix every instance gets its
   * own loopback address (127.1.x.y), which works on this host with no DNS
   * setup; with one, `read_write_dns` is `<name>.<suffix>` (wildcard DNS + SNI).
   */
  dnsSuffix?: string;
  /** Lifetime of database credentials, in seconds (1 hour by default). */
  credentialTtlSeconds: number;
  /** This Pier node: instances created through it run here. */
  nodeId: string;
  /** Shortest `suspend_timeout_duration` of an Autoscaling endpoint, in seconds (60 unless `pier up` says less). */
  minSuspendTimeoutSeconds?: number;
}

/** Where clients reach this Pier: what apps are told (known once the API and the proxy listen). */
export interface PierEndpoints {
  apiUrl: string;
  proxyPort: number;
  /** Pier's CA certificate (PEM), when Pier made its own. */
  caCertPath?: string;
  /** This Pier's data dir (where app logs are kept). */
  dataDir: string;
}

/** Everything a control-plane service works with, passed in explicitly. */
export interface ControlContext {
  store: Store;
  engine: Engine;
  reconciler: Reconciler;
  config: ControlConfig;
  /** Seals the secrets kept in the store (see auth/master-key.ts). */
  masterKey: MasterKey;
  /** Which identities may still log in (the proxy's cache; told at once when one is deleted). */
  identities: ActiveIdentities;
  /** The keys that sign database credentials (and the JWKS that verifies them). */
  keys: SigningKeys;
  /** Which store tables changed, in any Pier process: caches follow it (store/notifications.ts). */
  changes: StoreChanges;
  /** Set by `pier up` once the API and the proxy listen. */
  endpoints?: PierEndpoints;
  /** When clients last used an instance through the proxy (scale to zero), once the proxy runs. */
  activity?: {
    lastActiveTime(uid: string): Date | undefined;
    /** A suspended instance was woken without a client: its idle time counts from when it runs again. */
    woken(uid: string): void;
  };
}
