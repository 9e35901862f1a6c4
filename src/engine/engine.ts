import type pg from 'pg';
import type { BackupStorage } from '../backups/storage.js';

/**
 * Where instances' Postgres runs. `local/` runs processes on this host from
 * the bundled binaries; a Kubernetes engine (CloudNativePG) implements the same
 * interface. Every method is idempotent: the reconciler may call it again
 * after a crash at any point.
 */
export type Capacity = 'CU_1' | 'CU_2' | 'CU_4' | 'CU_8';

export const CAPACITIES: readonly Capacity[] = ['CU_1', 'CU_2', 'CU_4', 'CU_8'];

export interface EngineInstance {
  uid: string;
  name: string;
  capacity: Capacity;
  /** A Lakebase Autoscaling compute: sized for this many Autoscaling CUs instead of `capacity`. */
  computeUnits?: number;
  /** Storage is a branch of this instance: a copy of its data as of now, not the template. */
  sourceUid?: string;
  /** A hot standby of this instance: read-only, streaming its WAL (a read-only endpoint). */
  standbyOf?: string;
  /**
   * Which of the instance's nodes the call acts on (default 0). Node 0 is
   * made with the instance; secondaries take the other numbers (at most 3
   * nodes). Which one is the primary changes with each failover.
   */
  node?: number;
  /** The node that is the primary now (default: `node`). */
  primary?: number;
}

/** What a node of an HA instance is doing, as its primary and itself report it. */
export interface ReplicationObservation {
  /** Secondaries the primary streams WAL to now (`pg_stat_replication.state = 'streaming'`). */
  streaming: number[];
  /**
   * The last WAL position each ready secondary received and flushed, as
   * Postgres prints it (`0/3000148`): compare with `compareLsn` (backups/lsn.ts), never as a
   * JS number.
   */
  receivedLsn: Record<number, string>;
  /** Secondaries that run as standbys (in recovery). */
  standbys: number[];
  /**
   * How far each streaming secondary's replay is behind, in milliseconds, as
   * the primary measures it (`pg_stat_replication.replay_lag`, which keeps
   * growing while replay is stuck; 0 once caught up).
   */
  replayLagMs: Record<number, number>;
}

/** A finished base backup: restorable to any point at or after `stopLsn` (and `stoppedAt`). */
export interface BaseBackupResult {
  label: string;
  /** LSNs as Postgres prints them (`0/2000028`): never a JS number. */
  startLsn: string;
  stopLsn: string;
  /** The WAL file holding the start point: the oldest WAL a restore from this backup reads. */
  startWalFile: string;
  timeline: number;
  startedAt: Date;
  /** The server's clock just after `pg_backup_stop` returned: every later commit is stamped after it. */
  stoppedAt: Date;
  bytes: number;
}

/** Where a point-in-time child is restored from, and to which point. */
export interface RestoreSource {
  parentUid: string;
  /** The parent's base backup to start from (the nearest one before the target). */
  backupId: string;
  /** Replay WAL to exactly this LSN, to this time, or to the end of the archive. */
  target: { lsn: string } | { time: string } | { end_of_archive: string };
}

export interface EngineObservation {
  /** The instance's storage exists and is complete. */
  provisioned: boolean;
  /** A Postgres server for it is running… */
  running: boolean;
  /** …and accepts connections. */
  ready: boolean;
  /**
   * Not running, and its last server stopped cleanly (a shutdown, not a
   * crash or kill -9): a primary in this state is restarted, never failed over.
   */
  shutDownCleanly?: boolean;
}

/**
 * What an engine publishes about where its instances are reachable: `kind`
 * names the engine, the rest is that engine's own (the local engine: its
 * host and socket directory).
 */
export interface EngineReach {
  kind: string;
  /**
   * Where its processes run: two reaches with the same host see the same
   * processes (a pid means the same process) and the same files.
   */
  host: string;
  [field: string]: unknown;
}

export interface Engine {
  readonly pgMajorVersion: number;
  /** What runs for one node of the instance (default node 0). */
  observe(uid: string, node?: number): Promise<EngineObservation>;
  /**
   * Creates the instance's storage (from a prepared template; no initdb), or
   * a branch of `sourceUid`'s data: then returns the LSN it was copied at.
   */
  provision(instance: EngineInstance): Promise<{ sourceLsn?: string } | undefined>;
  /** Bytes of the instance's storage: its databases' files (`logical`) and all of it. */
  storageBytes(uid: string): Promise<{ logical: number; onDisk: number }>;
  /** Writes the Postgres settings for the instance's capacity; they apply at the next start. */
  configure(instance: EngineInstance): Promise<void>;
  start(instance: EngineInstance): Promise<void>;
  stop(uid: string, node?: number): Promise<void>;
  /** Stops the server if needed and removes every byte of the instance. */
  destroy(uid: string): Promise<void>;
  /** Makes sure a login role exists, optionally as a member of databricks_superuser. */
  ensureLoginRole(uid: string, role: string, options: { superuser: boolean }): Promise<void>;
  /** Where a client on this host reaches the instance's Postgres (a unix socket directory). */
  socketDir(uid: string): string;
  /**
   * How the control plane reaches `database` of the instance as its
   * superuser (roles, live catalog reads, synced-table writes): connection
   * settings for a `pg.Client`, so callers keep their own error handling.
   */
  superuserConnection(uid: string, database: string, applicationName?: string): pg.ClientConfig;
  /**
   * How a Pier process elsewhere can reach this engine's instances, as JSON:
   * published in the store with the node (see nodes/), read back by other
   * nodes' engines in `reachableConnection`.
   */
  reach(): EngineReach;
  /**
   * Like `superuserConnection`, for an instance another node's engine runs
   * (`reach` is what that engine published): settings when this process can
   * reach the instance's Postgres now, undefined when it cannot (another
   * host, or no server listening there).
   */
  reachableConnection(
    reach: EngineReach,
    uid: string,
    database: string,
    applicationName?: string,
  ): pg.ClientConfig | undefined;
  /** Uids of every instance the engine holds storage or processes for. */
  listInstances(): Promise<string[]>;
  /**
   * Stops an instance no one owns and moves its storage aside, whole, where
   * a person can inspect or restore it; returns where. Never deletes: the
   * store not knowing an instance does not prove its data is garbage.
   */
  quarantine(uid: string): Promise<string>;
  /**
   * Makes `node` a streaming replica of the primary: a replication slot on
   * the primary, a base backup of it into the node's own data directory,
   * `standby.signal`. Replaces whatever data the node had (a fenced old
   * primary comes back this way: there is no pg_rewind).
   */
  provisionSecondary(instance: EngineInstance & { node: number; primary: number }): Promise<void>;
  /** Drops a secondary: its server, its data directory and its slot on the primary. */
  removeSecondary(uid: string, node: number, primary: number): Promise<void>;
  /** Makes sure the primary keeps a replication slot for each of `nodes` (after a promotion). */
  ensureSlots(uid: string, primary: number, nodes: number[]): Promise<void>;
  /** What the primary streams to and how far each secondary got. */
  observeReplication(uid: string, primary: number, secondaries: number[]): Promise<ReplicationObservation>;
  /**
   * Sets `synchronous_standby_names` on the primary to `ANY 1 (…)` of
   * `nodes` (none: commits do not wait) and reloads it. Returns the
   * primary's current WAL position after the change.
   */
  setSynchronous(uid: string, primary: number, nodes: number[]): Promise<string>;
  /**
   * Makes sure `node` can never again accept writes as a primary: marks its
   * data directory as a standby's, then stops its server (gone already after
   * a crash). Idempotent.
   */
  fence(uid: string, node: number): Promise<void>;
  /** Undoes `fence` on a node no other was promoted in place of: it may start as the primary again. */
  unfence(uid: string, node: number): Promise<void>;
  /** Promotes a standby to primary (a no-op on a primary) and routes the instance's socket to it. */
  promote(uid: string, node: number): Promise<void>;
  /** The socket directory of one node (`socketDir(uid)` always reaches the primary). */
  nodeSocketDir(uid: string, node: number): string;
  /** Where instances' WAL archives and base backups are kept. */
  readonly backups: BackupStorage;
  /** Takes a base backup of a running instance into `backups` under `id`. */
  takeBaseBackup(uid: string, id: string): Promise<BaseBackupResult>;
  /** The running instance's current WAL write position. */
  currentWalLsn(uid: string): Promise<string>;
  /**
   * Makes everything the running instance wrote so far restorable from the
   * archive without waiting for a WAL segment to fill: commits a marker
   * transaction, switches to a new segment and waits until the finished one
   * is archived.
   */
  sealWal(uid: string): Promise<void>;
  /**
   * Creates a child's storage from its parent's base backup and WAL archive:
   * recovery replays to the target, promotes, and stops cleanly. The storage
   * appears whole or not at all. Returns the LSN the child branched at.
   */
  restore(instance: EngineInstance, source: RestoreSource): Promise<{ effectiveLsn: string }>;
  /** Finishes background work (e.g. preparing spare storage); instances keep running. */
  close(): Promise<void>;
}
