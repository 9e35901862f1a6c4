import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { databaseCredential } from '../helpers/access.js';
import { api, eventually, type PierProcess } from '../helpers/pier.js';

/** The admin user every Pier bootstraps. */
export const ADMIN = 'admin@pier.local';

export type Instance = Record<string, unknown> & { uid: string; state: string; effective_node_count: number };

export async function getInstance(pier: PierProcess, name: string): Promise<Instance> {
  const { status, body } = await api(pier, pier.adminToken, 'GET', `/api/2.0/database/instances/${name}`);
  if (status !== 200) throw new Error(`GET ${name}: ${status} ${JSON.stringify(body)}`);
  return body as Instance;
}

/** Waits until the instance is AVAILABLE with `nodes` nodes streaming. */
export async function streamingInstance(pier: PierProcess, name: string, nodes: number, timeoutMs = 60_000) {
  return eventually(
    async () => {
      const instance = await getInstance(pier, name);
      return instance.state === 'AVAILABLE' && instance.effective_node_count === nodes ? instance : undefined;
    },
    timeoutMs,
    `${name} AVAILABLE with ${nodes} nodes streaming`,
  );
}

/** A node's data directory and socket directory (docs/high-availability.md, "On disk"). */
export function nodePaths(pier: PierProcess, uid: string, node: number) {
  return {
    dataDir: join(pier.dataDir, 'instances', node === 0 ? uid : `${uid}.node-${node}`),
    socketDir: join(pier.dataDir, 'run', `${uid}.node-${node}`),
  };
}

/** The postmaster's pid of a node, from its postmaster.pid. */
export async function postmasterPid(pier: PierProcess, uid: string, node: number): Promise<number> {
  const text = await readFile(join(nodePaths(pier, uid, node).dataDir, 'postmaster.pid'), 'utf8');
  return Number.parseInt(text.split('\n')[0], 10);
}

/** Which nodes run as a writable primary now (asked of each node's own socket). */
export async function writableNodes(pier: PierProcess, uid: string): Promise<number[]> {
  const writable: number[] = [];
  for (const node of [0, 1, 2]) {
    const client = new pg.Client({
      host: nodePaths(pier, uid, node).socketDir,
      user: 'postgres',
      database: 'postgres',
    });
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
      if (!rows[0].standby) writable.push(node);
    } catch {
      // not running
    } finally {
      await client.end().catch(() => {});
    }
  }
  return writable;
}

/** A client through the proxy to `host` (read_write_dns or read_only_dns) as the admin. */
export async function proxyClient(pier: PierProcess, host: string, instance: string): Promise<pg.Client> {
  const client = new pg.Client({
    host,
    port: pier.proxyPort,
    user: ADMIN,
    password: await databaseCredential(pier, pier.adminToken, instance),
    database: 'postgres',
    ssl: { ca: readFileSync(pier.caCertPath as string, 'utf8'), servername: undefined },
    connectionTimeoutMillis: 5000,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}
