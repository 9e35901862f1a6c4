import type { Capacity } from '../engine/engine.js';
import type { Queryable } from '../store/store.js';

export type InstanceState =
  | 'STARTING'
  | 'AVAILABLE'
  | 'STOPPED'
  | 'UPDATING'
  | 'DELETING'
  | 'FAILING_OVER'
  /** Being made a Lakebase Autoscaling project (PATCH …/upgrade). */
  | 'UPGRADING'
  /** Pier's own: the instance cannot run until a person acts (see `status.message`). */
  | 'FAILED';

export interface CustomTag {
  key: string;
  value?: string;
}

/**
 * The instance a point-in-time child was restored from (the SDK's
 * DatabaseInstanceRef, as given on create), and what Pier resolved it to.
 */
export interface ParentRef {
  uid: string;
  name: string;
  /** As the user sent them, echoed back. */
  lsn?: string;
  branch_time?: string;
  /**
   * What recovery replays to: the LSN asked for (or a running parent's at
   * create), the time, or all of the archive of a parent that is down
   * (whose end was this LSN at create).
   */
  target: { lsn: string } | { time: string } | { end_of_archive: string };
  /** The parent's base backup the restore starts from. */
  backup_id: string;
}

/** What the user asked for. Only the API writes it. */
export interface InstanceSpec {
  capacity: Capacity;
  stopped: boolean;
  custom_tags: CustomTag[];
  retention_window_in_days: number;
  node_count: number;
  enable_readable_secondaries: boolean;
  enable_pg_native_login: boolean;
  usage_policy_id?: string;
  deleted: boolean;
  /** Failovers asked for with `POST …/failover`; the reconciler does one for each above `topology.failovers`. */
  failover_requests?: number;
  /**
   * Lakebase Autoscaling computes: the server is sized for this many
   * Autoscaling compute units (about 2 GB each) instead of `capacity`.
   */
  compute_units?: number;
  /** Scale to zero: stop the server after this many seconds without a client connection. */
  suspend_timeout_seconds?: number;
  /** Stopped because it was idle (not by a user): the next client connection starts it again. */
  suspended?: boolean;
  /** Storage is made as a copy of this instance's data (a branch of it), not from the template. */
  source_uid?: string;
  /** A hot standby of this instance (a Lakebase Autoscaling read-only endpoint). */
  standby_of?: string;
  /** PATCH …/upgrade is recording it as a Lakebase Autoscaling project. */
  upgrading?: boolean;
  /** Upgraded in place to this Lakebase Autoscaling project (`projects/<id>`): changed through it only. */
  upgraded_to?: string;
  /** Deleted with purge=true: the WAL archive and base backups go too, at once. */
  purge?: boolean;
  /** Set on a point-in-time child; never changes. */
  parent?: ParentRef;
}

/** A new instance's spec before the request's fields: one CU_1 node, running, seven days of history. */
export function defaultInstanceSpec(): InstanceSpec {
  return {
    capacity: 'CU_1',
    stopped: false,
    custom_tags: [],
    retention_window_in_days: 7,
    node_count: 1,
    enable_readable_secondaries: false,
    enable_pg_native_login: false,
    deleted: false,
  };
}

/** What the reconciler observed and did. Only the reconciler writes it (and `state`). */
export interface InstanceStatus {
  /** Storage was made for the instance: from now on, missing storage is a loss, not a new instance. */
  provisioned?: boolean;
  /** The capacity whose settings the running server was started with. */
  applied_capacity?: Capacity;
  /** The Autoscaling compute units whose settings the running server was started with. */
  applied_compute_units?: number;
  /** The WAL position the storage was copied at, when it was made from `source_uid` (e.g. `0/3000060`). */
  source_lsn?: string;
  /** The creator's login role exists. */
  roles_ready?: boolean;
  /**
   * Why the instance is FAILED and what to do, or the last failure of a pass
   * that will be retried: always client-safe text (never an exception's).
   */
  message?: string;
  /** The kind of the last failure (an ErrorKind), while it lasts. */
  error_kind?: string;
  /** The instance's nodes; absent: one node (0), the primary. */
  topology?: InstanceTopology;
  /** The running server archives its WAL (archive_mode applies at a start). */
  wal_archiving?: boolean;
  /** A child: the LSN on its parent it branched at (the promotion's switch point). */
  effective_lsn?: string;
}

/**
 * Which node does what (docs/high-availability.md). Written by the
 * reconciler, durably and before it acts where order matters: a recorded
 * fence comes before a promotion, so a Pier killed mid-failover finishes it.
 */
export interface InstanceTopology {
  primary: number;
  /** Secondaries with a data directory made from a base backup of the primary. */
  secondaries: number[];
  /** Secondaries to make again from a base backup (a fenced old primary). */
  reclone: number[];
  /**
   * A superset of `synchronous_standby_names` on the primary: every
   * acknowledged commit is on one of these. Empty: commits wait for no
   * secondary, so no automatic failover (it could lose acknowledged commits).
   */
  sync: number[];
  /** Secondaries the primary streamed to at the last look (effective_node_count is one more). */
  streaming: number[];
  /** Of `streaming`, those whose replay was too far behind at the last look: no read is routed to them. */
  lagging?: number[];
  /** `spec.failover_requests` handled so far. */
  failovers: number;
  /** A failover under way. */
  failover?: FailoverRecord;
}

interface FailoverRecord {
  from: number;
  /** Chosen once the old primary is fenced (its last WAL then reached the secondaries). */
  to?: number;
  /** The old primary can no longer accept writes (stopped, marked as a standby): promoting is safe. */
  fenced: boolean;
  reason: 'primary_died' | 'requested';
  started_at: string;
}

/** The topology of a row; an instance that never had secondaries has node 0 alone. */
export function topologyOf(status: InstanceStatus): InstanceTopology {
  return (
    status.topology ?? { primary: 0, secondaries: [], reclone: [], sync: [], streaming: [], failovers: 0 }
  );
}

export interface InstanceRow {
  uid: string;
  name: string;
  creator: string;
  created_at: Date;
  spec: InstanceSpec;
  generation: number;
  state: InstanceState;
  status: InstanceStatus;
  observed_generation: number;
  address: string | null;
  /** The Pier node that runs the instance. */
  node_id: string | null;
  /** The loopback address of `read_only_dns`, once readable secondaries were enabled. */
  read_only_address: string | null;
  /** A Lakebase Autoscaling compute only: hidden from `/api/2.0/database/instances`. */
  autoscaling: boolean;
}

const COLUMNS =
  'uid::text, name, creator, created_at, spec, generation::int, state, status, observed_generation::int, host(address) AS address, node_id, host(read_only_address) AS read_only_address, autoscaling';

export async function insertInstance(
  db: Queryable,
  row: {
    uid: string;
    name: string;
    creator: string;
    spec: InstanceSpec;
    address: string | null;
    nodeId: string;
    autoscaling?: boolean;
  },
): Promise<InstanceRow> {
  // No state: the reconciler writes it (a new row is STARTING by the column's default).
  const { rows } = await db.query<InstanceRow>(
    `INSERT INTO instances (uid, name, creator, spec, address, node_id, autoscaling) VALUES ($1, $2, $3, $4, $5, $6, $7)
     RETURNING ${COLUMNS}`,
    [
      row.uid,
      row.name,
      row.creator,
      JSON.stringify(row.spec),
      row.address,
      row.nodeId,
      row.autoscaling ?? false,
    ],
  );
  return rows[0];
}

export async function findInstanceByName(
  db: Queryable,
  name: string,
  lock = false,
): Promise<InstanceRow | undefined> {
  const { rows } = await db.query<InstanceRow>(
    `SELECT ${COLUMNS} FROM instances WHERE name = $1${lock ? ' FOR UPDATE' : ''}`,
    [name],
  );
  return rows[0];
}

export async function findInstanceByUid(db: Queryable, uid: string): Promise<InstanceRow | undefined> {
  if (!/^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$/i.test(uid)) return undefined;
  const { rows } = await db.query<InstanceRow>(`SELECT ${COLUMNS} FROM instances WHERE uid = $1`, [uid]);
  return rows[0];
}

/** The instances one Pier node runs. */
export async function listNodeInstances(db: Queryable, nodeId: string): Promise<InstanceRow[]> {
  const { rows } = await db.query<InstanceRow>(
    `SELECT ${COLUMNS} FROM instances WHERE node_id = $1 ORDER BY name`,
    [nodeId],
  );
  return rows;
}

/** Takes over instances no node runs yet (made before nodes existed). */
export async function claimUnownedInstances(db: Queryable, nodeId: string): Promise<void> {
  await db.query('UPDATE instances SET node_id = $1 WHERE node_id IS NULL', [nodeId]);
}

export async function listAllInstanceUids(db: Queryable): Promise<Set<string>> {
  const { rows } = await db.query<{ uid: string }>('SELECT uid::text FROM instances');
  return new Set(rows.map((row) => row.uid));
}

/**
 * One page of instances ordered by name, after `afterName`. With `visibleTo`,
 * only instances that user holds a permission on.
 */
export async function listInstancesPage(
  db: Queryable,
  options: { afterName?: string; limit: number; visibleTo?: string },
): Promise<InstanceRow[]> {
  const { rows } = await db.query<InstanceRow>(
    `SELECT ${COLUMNS} FROM instances i
      WHERE ($1::text IS NULL OR name > $1) AND NOT autoscaling
        AND ($3::text IS NULL OR EXISTS (
              SELECT 1 FROM instance_permissions p WHERE p.instance_uid = i.uid AND lower(p.principal) = lower($3)))
      ORDER BY name LIMIT $2`,
    [options.afterName ?? null, options.limit, options.visibleTo ?? null],
  );
  return rows;
}

/** Provisioned instances (the `--max-instances` quota); Autoscaling branches' computes are not counted. */
export async function countInstances(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM instances WHERE NOT autoscaling',
  );
  return rows[0].n;
}

/** The lowest free per-instance loopback address in 127.1.0.0/16. */
export async function allocateLoopbackAddress(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ address: string }>(
    `SELECT host('127.1.0.0'::inet + n) AS address
       FROM generate_series(1, 65534) AS n
      WHERE NOT EXISTS (SELECT 1 FROM instances
                         WHERE address = '127.1.0.0'::inet + n OR read_only_address = '127.1.0.0'::inet + n)
      ORDER BY n LIMIT 1`,
  );
  return rows[0].address;
}

/**
 * A user's change: bumps the generation so the reconciler knows there is new
 * work. Never touches `state` (see instances/state.ts for what is reported meanwhile).
 */
export async function updateInstanceSpec(
  db: Queryable,
  uid: string,
  spec: InstanceSpec,
): Promise<InstanceRow> {
  const { rows } = await db.query<InstanceRow>(
    `UPDATE instances SET spec = $2, generation = generation + 1, updated_at = now()
      WHERE uid = $1 RETURNING ${COLUMNS}`,
    [uid, JSON.stringify(spec)],
  );
  return rows[0];
}

/**
 * The reconciler's report. Written only if no user change came in since the
 * reconciler read `generation`; returns false if one did (reconcile again).
 */
export async function updateInstanceStatus(
  db: Queryable,
  uid: string,
  generation: number,
  state: InstanceState,
  status: InstanceStatus,
  done: boolean,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE instances SET state = $3, status = $4, updated_at = now(),
            observed_generation = CASE WHEN $5 THEN generation ELSE observed_generation END
      WHERE uid = $1 AND generation = $2`,
    [uid, generation, state, JSON.stringify(status), done],
  );
  return (rowCount ?? 0) > 0;
}

/** Gives the instance its read-only address (readable secondaries). */
export async function setReadOnlyAddress(db: Queryable, uid: string, address: string): Promise<InstanceRow> {
  const { rows } = await db.query<InstanceRow>(
    `UPDATE instances SET read_only_address = $2 WHERE uid = $1 RETURNING ${COLUMNS}`,
    [uid, address],
  );
  return rows[0];
}

/**
 * Records the instance's topology (and the state to show) at once, whatever
 * the generation: the reconciler, holding the instance's lease, writes it
 * before acting on it, and a user's change meanwhile must not drop it.
 */
export async function recordInstanceTopology(
  db: Queryable,
  uid: string,
  topology: InstanceTopology,
  state?: InstanceState,
): Promise<void> {
  await db.query(
    `UPDATE instances SET status = jsonb_set(status, '{topology}', $2), state = coalesce($3, state), updated_at = now()
      WHERE uid = $1`,
    [uid, JSON.stringify(topology), state ?? null],
  );
}

export async function deleteInstanceRow(db: Queryable, uid: string, generation: number): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM instances WHERE uid = $1 AND generation = $2', [
    uid,
    generation,
  ]);
  return (rowCount ?? 0) > 0;
}

export interface ChildRef {
  uid: string;
  name: string;
  parent_uid: string;
  parent: ParentRef;
  effective_lsn?: string;
}

/** The point-in-time children of the given instances (not yet being deleted). */
export async function listChildRefs(db: Queryable, parentUids: string[]): Promise<ChildRef[]> {
  if (parentUids.length === 0) return [];
  const { rows } = await db.query<ChildRef>(
    `SELECT uid::text, name, spec->'parent'->>'uid' AS parent_uid, spec->'parent' AS parent,
            status->>'effective_lsn' AS effective_lsn
       FROM instances
      WHERE spec->'parent'->>'uid' = ANY($1::text[]) AND NOT (spec->>'deleted')::boolean
      ORDER BY name`,
    [parentUids],
  );
  return rows;
}

/** Every descendant of an instance (children, their children, …), nearest first. */
export async function listDescendantUids(db: Queryable, uid: string): Promise<string[]> {
  const { rows } = await db.query<{ uid: string }>(
    `WITH RECURSIVE descendants(uid, depth) AS (
       SELECT uid, 1 FROM instances WHERE spec->'parent'->>'uid' = $1
       UNION
       SELECT i.uid, d.depth + 1 FROM instances i JOIN descendants d ON i.spec->'parent'->>'uid' = d.uid::text
     )
     SELECT uid::text FROM descendants GROUP BY uid ORDER BY min(depth)`,
    [uid],
  );
  return rows.map((row) => row.uid);
}
