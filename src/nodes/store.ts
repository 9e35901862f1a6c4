import type { EngineReach } from '../engine/engine.js';
import type { Queryable } from '../store/store.js';

/**
 * A node is one Pier process's data dir on a shared store: what its engine
 * publishes about where its instances are reachable, and its heartbeat.
 * Liveness is judged by the store's clock alone, so nodes' clocks never
 * have to agree.
 */
export interface NodeRow {
  node_id: string;
  /** Derived: `reach.host`, where its processes run. */
  host: string;
  reach: EngineReach;
  api_url: string | null;
  /** The process id of its Pier (on `host`): a node on the same host can tell at once that it is gone. */
  pid: number;
  /** When that process started (Linux clock ticks since boot), if known: tells a reused pid apart. */
  pid_start: string | null;
  pier_version: string;
  started_at: Date;
  heartbeat_at: Date;
  stopped_at: Date | null;
  /** Derived: heartbeat within the timeout and not stopped. */
  alive: boolean;
}

/** A node whose heartbeat is older than this is taken for dead: its pipelines may be taken over. */
const NODE_TIMEOUT_MS = 15_000;

const COLUMNS = `node_id, reach->>'host' AS host, reach, api_url, pid, pid_start, pier_version, started_at, heartbeat_at, stopped_at,
  (stopped_at IS NULL AND heartbeat_at > clock_timestamp() - $1::double precision * interval '1 millisecond') AS alive`;

/** Records (or re-records, after a restart) this node as running now. */
export async function registerNode(
  db: Queryable,
  node: Pick<NodeRow, 'node_id' | 'reach' | 'pid' | 'pid_start' | 'pier_version'>,
): Promise<void> {
  await db.query(
    `INSERT INTO nodes (node_id, reach, pid, pid_start, pier_version, started_at, heartbeat_at)
     VALUES ($1, $2, $3, $4, $5, clock_timestamp(), clock_timestamp())
     ON CONFLICT (node_id) DO UPDATE
       SET reach = $2, pid = $3, pid_start = $4, pier_version = $5, api_url = NULL,
           started_at = clock_timestamp(), heartbeat_at = clock_timestamp(), stopped_at = NULL`,
    [node.node_id, JSON.stringify(node.reach), node.pid, node.pid_start, node.pier_version],
  );
}

/** Where this node's API listens, once it does (named in errors that send a caller there). */
export async function setNodeApiUrl(db: Queryable, nodeId: string, apiUrl: string): Promise<void> {
  await db.query('UPDATE nodes SET api_url = $2 WHERE node_id = $1', [nodeId, apiUrl]);
}

/** Renews the heartbeat; false if the row is gone (it is then registered again). */
export async function beat(db: Queryable, nodeId: string): Promise<boolean> {
  const { rowCount } = await db.query(
    'UPDATE nodes SET heartbeat_at = clock_timestamp(), stopped_at = NULL WHERE node_id = $1',
    [nodeId],
  );
  return (rowCount ?? 0) > 0;
}

/** A clean stop: the node is not alive from now on, without waiting for the timeout. */
export async function markNodeStopped(db: Queryable, nodeId: string): Promise<void> {
  await db.query('UPDATE nodes SET stopped_at = clock_timestamp() WHERE node_id = $1', [nodeId]);
}

export async function listNodes(db: Queryable): Promise<NodeRow[]> {
  const { rows } = await db.query<NodeRow>(`SELECT ${COLUMNS} FROM nodes ORDER BY started_at, node_id`, [
    NODE_TIMEOUT_MS,
  ]);
  return rows;
}

export async function findNode(db: Queryable, nodeId: string): Promise<NodeRow | undefined> {
  const { rows } = await db.query<NodeRow>(`SELECT ${COLUMNS} FROM nodes WHERE node_id = $2`, [
    NODE_TIMEOUT_MS,
    nodeId,
  ]);
  return rows[0];
}

/** Per node: how many instances run there and how many pipeline leases it holds now. */
export async function nodeLoads(
  db: Queryable,
): Promise<Map<string, { instances: number; pipelines: number }>> {
  const { rows } = await db.query<{ node_id: string; instances: number; pipelines: number }>(
    `SELECT n.node_id,
            (SELECT count(*)::int FROM instances i
              WHERE i.node_id = n.node_id AND NOT coalesce((i.spec->>'deleted')::boolean, false)) AS instances,
            (SELECT count(*)::int FROM leases l
              WHERE l.resource = 'sync_pipeline' AND l.holder = n.node_id AND l.expires_at > clock_timestamp()) AS pipelines
       FROM nodes n`,
  );
  return new Map(rows.map((row) => [row.node_id, { instances: row.instances, pipelines: row.pipelines }]));
}

/** Removes a node's row (and any lease it still holds); false if there was none. */
export async function forgetNode(db: Queryable, nodeId: string): Promise<boolean> {
  await db.query('DELETE FROM leases WHERE holder = $1', [nodeId]);
  const { rowCount } = await db.query('DELETE FROM nodes WHERE node_id = $1', [nodeId]);
  return (rowCount ?? 0) > 0;
}
