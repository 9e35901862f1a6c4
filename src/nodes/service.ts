import { readFileSync } from 'node:fs';
import type pg from 'pg';
import type { ControlContext } from '../control/context.js';
import type { Engine } from '../engine/engine.js';
import { PierError } from '../errors.js';
import { noteFailure } from '../failures.js';
import type { InstanceRow } from '../instances/store.js';
import type { Store } from '../store/store.js';
import {
  beat,
  findNode,
  forgetNode,
  listNodes,
  markNodeStopped,
  type NodeRow,
  registerNode,
  setNodeApiUrl,
} from './store.js';

/** The heartbeat is renewed this often; a node is dead after NODE_TIMEOUT_MS without one. */
const HEARTBEAT_MS = 1000;

const PIER_VERSION = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/**
 * This node in the store's `nodes` table while it runs: registered with
 * where its engine's instances are reachable, its heartbeat renewed every
 * second, marked stopped on a clean stop. Other nodes read it to tell a
 * dead node from a live one, and to reach a dead node's instances.
 *
 * @example
 * const heartbeat = await NodeHeartbeat.start(store, engine, nodeId);
 * heartbeat.listening('https://127.0.0.1:8443');
 * …
 * await heartbeat.stop();
 */
export class NodeHeartbeat {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> = Promise.resolve();

  private constructor(
    private readonly store: Store,
    private readonly engine: Engine,
    readonly nodeId: string,
  ) {}

  static async start(store: Store, engine: Engine, nodeId: string): Promise<NodeHeartbeat> {
    const heartbeat = new NodeHeartbeat(store, engine, nodeId);
    await heartbeat.register();
    heartbeat.timer = setInterval(() => {
      heartbeat.beating = heartbeat.beat();
    }, HEARTBEAT_MS);
    return heartbeat;
  }

  private register(): Promise<void> {
    return registerNode(this.store, {
      node_id: this.nodeId,
      reach: this.engine.reach(),
      pid: process.pid,
      pid_start: processStart(process.pid) ?? null,
      pier_version: PIER_VERSION,
    });
  }

  private apiUrl: string | undefined;

  private async beat(): Promise<void> {
    try {
      if (await beat(this.store, this.nodeId)) return;
      // The row was removed (by hand): this node is still here.
      await this.register();
      if (this.apiUrl) await setNodeApiUrl(this.store, this.nodeId, this.apiUrl);
    } catch (error) {
      noteFailure('nodes.heartbeat', error);
    }
  }

  async listening(apiUrl: string): Promise<void> {
    this.apiUrl = apiUrl;
    await setNodeApiUrl(this.store, this.nodeId, apiUrl);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    await markNodeStopped(this.store, this.nodeId).catch((e) => noteFailure('nodes.stop', e));
  }
}

/** A node as this process judges it: `gone` when proven dead here, `alive` when not gone and its heartbeat is fresh. */
export interface JudgedNode extends NodeRow {
  gone: boolean;
}

/**
 * The store's view of a node (its heartbeat), sharpened where this process
 * knows better: a node on this host (same boot, same process namespace)
 * whose Pier process no longer exists — no such pid, a zombie, or a pid now
 * another process's (its start time differs) — is gone now, not 15 s from
 * now. Where the start time is unknown a reused pid only makes a dead node
 * look alive until its heartbeat runs out: never the other way round.
 */
export function judgeNode(row: NodeRow, thisHost: string): JudgedNode {
  const gone = row.host === thisHost && !sameProcessRuns(row.pid, row.pid_start);
  return { ...row, gone, alive: row.alive && !gone };
}

export async function listJudgedNodes(ctx: Pick<ControlContext, 'store' | 'engine'>): Promise<JudgedNode[]> {
  const host = ctx.engine.reach().host;
  return (await listNodes(ctx.store)).map((row) => judgeNode(row, host));
}

function sameProcessRuns(pid: number, start: string | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists, as another user's.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(pid);
  if (!stat) return true; // not Linux, or it ended this instant: the heartbeat decides
  return stat.state !== 'Z' && (start === null || stat.start === start);
}

/** State and start time of a process from /proc/<pid>/stat (fields 3 and 22), if there is one. */
function procStat(pid: number): { state: string; start: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], start: fields[19] };
  } catch {
    return undefined;
  }
}

function processStart(pid: number): string | undefined {
  return procStat(pid)?.start;
}

/** What a connection to an instance needs to know about where it runs. */
type Placed = Pick<InstanceRow, 'uid' | 'name' | 'node_id'>;

/**
 * How this process reaches `database` of the instance as its superuser,
 * wherever the instance runs: through this node's engine when the instance
 * is this node's, else through what its node published (another Pier
 * process on this host: its sockets). An instance out of reach is a 503
 * that names its node and where that node's API is.
 */
export async function instanceConnection(
  ctx: Pick<ControlContext, 'store' | 'engine' | 'config'>,
  instance: Placed,
  database: string,
  applicationName?: string,
): Promise<pg.ClientConfig> {
  if (!instance.node_id || instance.node_id === ctx.config.nodeId) {
    return ctx.engine.superuserConnection(instance.uid, database, applicationName);
  }
  const found = await findNode(ctx.store, instance.node_id);
  const node = found && judgeNode(found, ctx.engine.reach().host);
  const reachable =
    node && ctx.engine.reachableConnection(node.reach, instance.uid, database, applicationName);
  if (reachable) return reachable;
  const where = node?.api_url ? ` (its API: ${node.api_url})` : '';
  const why = !node
    ? 'which has not registered with this store'
    : !node.alive
      ? 'which is not running'
      : node.host !== ctx.engine.reach().host
        ? `on host ${node.host.split('/')[0]}`
        : 'where its Postgres is not listening now';
  throw new PierError(
    'TEMPORARILY_UNAVAILABLE',
    `Database instance '${instance.name}' runs on Pier node ${instance.node_id}${where}, ${why}; this node cannot reach its Postgres. ${
      node?.alive
        ? 'Send the request to that node.'
        : 'Start that node again (pier up on its data dir) and retry.'
    }`,
  );
}

/**
 * Forgets a node that is gone for good (its data dir removed): only one that
 * is not running and has no instances, since an instance is driven by its
 * node alone and would be left without one.
 */
export async function forgetStoppedNode(
  ctx: Pick<ControlContext, 'store' | 'engine'>,
  nodeId: string,
): Promise<void> {
  await ctx.store.transaction(async (tx) => {
    await tx.query('LOCK TABLE nodes IN SHARE ROW EXCLUSIVE MODE');
    const found = await findNode(tx, nodeId);
    if (!found) throw new PierError('RESOURCE_DOES_NOT_EXIST', `Pier node ${nodeId} does not exist.`);
    const node = judgeNode(found, ctx.engine.reach().host);
    if (node.alive) {
      throw new PierError(
        'INVALID_STATE',
        `Pier node ${nodeId} is running${node.api_url ? ` (${node.api_url})` : ''}; stop it first, then forget it.`,
      );
    }
    const { rows } = await tx.query<{ name: string }>(
      `SELECT name FROM instances WHERE node_id = $1 AND NOT coalesce((spec->>'deleted')::boolean, false) ORDER BY name`,
      [nodeId],
    );
    if (rows.length > 0) {
      throw new PierError(
        'INVALID_STATE',
        `Pier node ${nodeId} still has ${rows.length === 1 ? 'instance' : 'instances'} ${rows.map((r) => `'${r.name}'`).join(', ')}, which only it runs: start it again and delete ${rows.length === 1 ? 'it' : 'them'} first.`,
      );
    }
    await forgetNode(tx, nodeId);
  });
}
