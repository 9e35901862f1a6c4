import { call } from './api';
import { Badge, ErrorText, formatTime, usePoll } from './ui';

/** What `GET /api/2.0/pier/nodes` says of one Pier process on this store. */
interface PierNode {
  node_id: string;
  state: 'RUNNING' | 'NOT_RESPONDING' | 'STOPPED';
  is_this_node: boolean;
  host: string;
  api_url?: string;
  pier_version: string;
  last_heartbeat_time: string;
  instance_count: number;
  pipelines_running: number;
}

const listNodes = () => call<{ nodes: PierNode[] }>('GET', '/api/2.0/pier/nodes').then((r) => r.nodes);

/** The Pier processes sharing this store (admins): which run, and what each carries. */
export function NodesPage() {
  const { data, error } = usePoll(listNodes, () => 2000);
  const down = (data ?? []).filter((n) => n.state === 'NOT_RESPONDING');
  return (
    <section>
      <div class="title-row">
        <h1 tabIndex={-1}>Nodes</h1>
      </div>
      <ErrorText error={error} />
      {down.length > 0 ? (
        <p class="error" role="status">
          {down.length === 1 ? '1 node is' : `${down.length} nodes are`} not responding: their synced tables
          are run by a live node on the same host, or wait until the node runs again.
        </p>
      ) : null}
      {data ? (
        <table class="list">
          <thead>
            <tr>
              <th scope="col">Node</th>
              <th scope="col">State</th>
              <th scope="col">Host</th>
              <th scope="col" class="wide">
                API
              </th>
              <th scope="col">Instances</th>
              <th scope="col">Pipelines</th>
              <th scope="col" class="wide">
                Last heartbeat
              </th>
            </tr>
          </thead>
          <tbody>
            {data.map((n) => (
              <tr key={n.node_id}>
                <td>
                  <code>{n.node_id}</code>
                  {n.is_this_node ? <span class="muted"> (this node)</span> : null}
                </td>
                <td>
                  <Badge state={n.state} />
                </td>
                <td>{n.host}</td>
                <td class="wide">{n.api_url ?? '—'}</td>
                <td>{n.instance_count}</td>
                <td>{n.pipelines_running}</td>
                <td class="wide">{formatTime(n.last_heartbeat_time)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </section>
  );
}
