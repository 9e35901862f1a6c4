import type { NodeRow } from './store.js';

/** What `GET /api/2.0/pier/nodes` shows of one node (Pier's own API: Databricks has no nodes). */
export interface NodeJson {
  node_id: string;
  /**
   * RUNNING (heartbeat within 15 s), NOT_RESPONDING (killed, hung or cut off
   * from the store; at once when its process is seen gone on this host),
   * STOPPED (a clean stop).
   */
  state: 'RUNNING' | 'NOT_RESPONDING' | 'STOPPED';
  /** The node that answered this request. */
  is_this_node: boolean;
  host: string;
  api_url?: string;
  pier_version: string;
  start_time: string;
  last_heartbeat_time: string;
  stop_time?: string;
  /** Instances made through this node (they run there), Autoscaling computes included. */
  instance_count: number;
  /** Sync pipelines whose lease it holds now, its own and those it took over. */
  pipelines_running: number;
}

export function nodeView(
  row: NodeRow,
  facts: { thisNode: string; instances: number; pipelines: number },
): NodeJson {
  return {
    node_id: row.node_id,
    state: row.alive ? 'RUNNING' : row.stopped_at ? 'STOPPED' : 'NOT_RESPONDING',
    is_this_node: row.node_id === facts.thisNode,
    // The boot id behind the host name is for matching, not for people.
    host: row.host.split('/')[0],
    ...(row.api_url ? { api_url: row.api_url } : {}),
    pier_version: row.pier_version,
    start_time: row.started_at.toISOString(),
    last_heartbeat_time: row.heartbeat_at.toISOString(),
    ...(row.stopped_at ? { stop_time: row.stopped_at.toISOString() } : {}),
    instance_count: facts.instances,
    pipelines_running: facts.pipelines,
  };
}
