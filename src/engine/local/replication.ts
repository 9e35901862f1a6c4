import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { SOCKET_PORT } from './cluster.js';
import { handToPostgres, type PostgresRuntime } from './runtime.js';

/**
 * Streaming replication between the nodes of one instance, over their
 * private unix sockets. Every node's settings name the same primary socket
 * (`run/<uid>`, a link Pier points at whichever node is the primary), so a
 * failover repoints every secondary by moving that one link: each
 * walreceiver reconnects to the new primary by itself and follows its new
 * timeline (`recovery_target_timeline = 'latest'`, Postgres' default).
 */

/** The role secondaries stream as. `databricks_` names are reserved: no identity can log in as it. */
const REPLICATION_ROLE = 'databricks_replication';

/** The file holding `synchronous_standby_names`; `pier.conf` includes it. */
const SYNCHRONOUS_FILE = 'pier-synchronous.conf';

/** `pier_node_1`: a node's replication slot and its `application_name` on the primary. */
export function nodeSlotName(node: number): string {
  return `pier_node_${node}`;
}

function nodeOfApplicationName(name: string): number | undefined {
  const match = /^pier_node_([0-9])$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/** Settings every node of an instance gets; they matter only while the node is a standby. */
export function replicationSettings(primarySocketDir: string, node: number): Record<string, string | number> {
  return {
    primary_conninfo: `host=${primarySocketDir} port=${SOCKET_PORT} user=${REPLICATION_ROLE} application_name=${nodeSlotName(node)}`,
    primary_slot_name: nodeSlotName(node),
    // After a failover the walreceiver retries the (moved) primary socket this often.
    wal_retrieve_retry_interval: '200ms',
    include_if_exists: SYNCHRONOUS_FILE,
  };
}

/** The one pg_hba.conf of every node: the private socket is trusted, also for replication. */
export const HBA = 'local all all trust\nlocal replication all trust\n';

/**
 * Writes `synchronous_standby_names` for a node: `ANY 1 (…)` of `nodes`, or
 * empty (commits wait for no secondary). Applies at the next reload or start.
 */
export async function writeSynchronousNames(
  runtime: PostgresRuntime,
  dataDir: string,
  nodes: number[],
): Promise<void> {
  const names = nodes.length === 0 ? '' : `ANY 1 (${nodes.map(nodeSlotName).join(', ')})`;
  const file = join(dataDir, SYNCHRONOUS_FILE);
  await writeFile(file, `# Written by Pier's reconciler.\nsynchronous_standby_names = '${names}'\n`);
  await handToPostgres(runtime, file, 0o600);
}

/** Runs `work` on a short superuser session to a node's socket. */
export async function withNode<T>(socketDir: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: socketDir,
    port: SOCKET_PORT,
    user: 'postgres',
    database: 'postgres',
    application_name: 'pier replication',
    connectionTimeoutMillis: 3000,
    query_timeout: 60_000,
  });
  client.on('error', () => {}); // a failure surfaces through connect or query
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** The replication role and a slot per secondary, on the primary (idempotent). */
export async function ensureReplicationRoleAndSlots(client: pg.Client, nodes: number[]): Promise<void> {
  const { rowCount } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [REPLICATION_ROLE]);
  if (!rowCount) await client.query(`CREATE ROLE ${REPLICATION_ROLE} LOGIN REPLICATION`);
  for (const node of nodes) {
    await client.query(
      `SELECT pg_create_physical_replication_slot($1, true)
        WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`,
      [nodeSlotName(node)],
    );
  }
}

/** The secondaries the primary streams to now, and how far behind each one's replay is. */
export async function streamingNodes(
  client: pg.Client,
): Promise<{ nodes: number[]; replayLagMs: Record<number, number> }> {
  const { rows } = await client.query<{ application_name: string; lag_ms: number }>(
    `SELECT application_name, COALESCE(EXTRACT(epoch FROM replay_lag) * 1000, 0)::float8 AS lag_ms
       FROM pg_stat_replication WHERE state = 'streaming'`,
  );
  const streaming = { nodes: [] as number[], replayLagMs: {} as Record<number, number> };
  for (const row of rows) {
    const node = nodeOfApplicationName(row.application_name);
    if (node === undefined) continue;
    streaming.nodes.push(node);
    streaming.replayLagMs[node] = row.lag_ms;
  }
  return streaming;
}

/** A standby's last received (flushed) WAL position, or null when it is not in recovery. */
export async function standbyPosition(client: pg.Client): Promise<string | null> {
  const { rows } = await client.query<{ standby: boolean; lsn: string | null; replayed: string | null }>(
    'SELECT pg_is_in_recovery() AS standby, pg_last_wal_receive_lsn()::text AS lsn, pg_last_wal_replay_lsn()::text AS replayed',
  );
  if (!rows[0].standby) return null;
  // A standby that has not streamed yet reports no receive position; what it replayed is what it has.
  return rows[0].lsn ?? rows[0].replayed ?? '0/0';
}
