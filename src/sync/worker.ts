import { noteFailure } from '../failures.js';
import { instanceConnection, listJudgedNodes } from '../nodes/service.js';
import type { NodeRow } from '../nodes/store.js';
import type { ComponentFactory } from '../server/pier.js';
import { claimLeases, releaseLease, renewLease } from '../store/leases.js';
import type { Store } from '../store/store.js';
import { listPlacedPipelines, PIPELINE_LEASE, type PlacedPipeline } from './pipelines-store.js';
import { placePipelines } from './placement.js';
import { PipelineRunner } from './runner.js';
import { failed } from './status.js';
import { listSyncedTablesOfPipeline, setStrandedStatus } from './store.js';

/** How long a claimed pipeline stays this process's without a renewal: a dead Pier's work is free after it. */
const LEASE_TTL_MS = 15_000;
/** Pipelines are claimed (leases renewed) and due updates looked for this often. */
const TICK_MS = 500;
/** Stranded pipelines' tables are told why they wait at most this often. */
const STRANDED_EVERY_MS = 5000;

/**
 * The sync workers of this Pier node. Each tick it reads every pipeline and
 * node from the store, decides with placePipelines which it should run (its
 * own instances' pipelines, and its share of a dead node's that it can
 * reach), claims those leases ('sync_pipeline', id, held by the node id) and
 * runs a PipelineRunner for each lease it holds. So a Pier restarted after
 * kill -9 takes its pipelines back at once, a live node on the same host
 * takes a dead node's pipelines once its heartbeat and leases have run out,
 * and hands them back when that node is alive again.
 */
export const syncWorkers: ComponentFactory = async (ctx, options) => {
  const holder = ctx.config.nodeId;
  const runners = new Map<string, PipelineRunner>();
  let closed = false;
  let ticking = false;
  let strandedAt = 0;
  /**
   * Runners finishing their pass before they stop, off the tick (a snapshot
   * may take minutes). A pipeline given away keeps its lease renewed until
   * then, and is released after; one whose lease was lost is just stopped.
   */
  const retiring = new Map<string, { done: Promise<void>; release: boolean }>();
  const retire = (id: string, why: string | undefined, release: boolean) => {
    const runner = runners.get(id);
    if (!runner) return;
    runners.delete(id);
    const done = runner
      .stop(why)
      .then(() => (release ? releaseLease(ctx.store, PIPELINE_LEASE, id, holder) : undefined))
      .catch((e) => noteFailure('sync.release', e))
      .finally(() => retiring.delete(id));
    retiring.set(id, { done, release });
  };

  const runnerFor = (pipeline: PlacedPipeline) =>
    new PipelineRunner(
      pipeline,
      ctx.store,
      (instance, database) => instanceConnection(ctx, instance, database),
      // The lease's holder before this claim, if another node: its sessions are ended first.
      { holder, ...(pipeline.holder && pipeline.holder !== holder ? { takenFrom: pipeline.holder } : {}) },
    );

  const tick = async () => {
    if (ticking || closed) return;
    ticking = true;
    try {
      const [pipelines, nodes] = await Promise.all([listPlacedPipelines(ctx.store), listJudgedNodes(ctx)]);
      const alive = new Set(nodes.filter((node) => node.alive).map((node) => node.node_id));
      const reachOf = new Map(nodes.map((node) => [node.node_id, node.reach]));
      const byId = new Map(pipelines.map((pipeline) => [pipeline.id, pipeline]));
      const host = ctx.engine.reach().host;
      const plan = placePipelines({
        me: holder,
        pipelines,
        alive,
        running: new Set(runners.keys()),
        peersOnHost: nodes.filter((node) => node.alive && node.host === host).length,
        reachable: (id) => {
          const pipeline = byId.get(id);
          const reach = pipeline?.node_id ? reachOf.get(pipeline.node_id) : undefined;
          return (
            reach !== undefined &&
            ctx.engine.reachableConnection(reach, pipeline?.instance_uid ?? '', 'postgres') !== undefined
          );
        },
      });
      for (const id of plan.release) {
        const pipeline = byId.get(id);
        const back = pipeline?.node_id !== null && alive.has(pipeline?.node_id ?? '');
        retire(
          id,
          back
            ? `Handed back to Pier node ${pipeline?.node_id}, where instance '${pipeline?.instance_name}' runs, now that it is running again; it goes on from the last synced version.`
            : `Let go: instance '${pipeline?.instance_name}' is out of this node's reach now; the node it runs on goes on from the last synced version.`,
          true,
        );
        options.log(
          `sync: pipeline ${id} ${back ? `handed back to node ${pipeline?.node_id}` : 'let go (instance out of reach)'}`,
        );
      }
      for (const [id, { release }] of retiring) {
        if (release) await renewLease(ctx.store, PIPELINE_LEASE, id, holder, LEASE_TTL_MS);
      }
      const held = new Set(
        plan.claim.length === 0
          ? []
          : await claimLeases(ctx.store, PIPELINE_LEASE, holder, {
              keys: plan.claim,
              ttlMs: LEASE_TTL_MS,
              // A holder proven dead on this host need not be waited for.
              takeFrom: nodes.filter((node) => node.gone).map((node) => node.node_id),
            }),
      );
      for (const id of [...runners.keys()]) {
        if (held.has(id)) continue;
        retire(
          id,
          'This node lost the lease (it was not heard from in time): the node that holds it now goes on from the last synced version.',
          false,
        );
      }
      for (const id of held) {
        const pipeline = byId.get(id);
        // A runner of it still finishing its pass: a new one starts once it has stopped.
        if (!pipeline || closed || retiring.has(id)) continue;
        let runner = runners.get(id);
        if (!runner) {
          if (pipeline.node_id !== holder) {
            options.log(
              `sync: taking over pipeline ${id} of instance '${pipeline.instance_name}' from node ${pipeline.node_id}, which is not running`,
            );
          }
          runner = runnerFor(pipeline);
          runners.set(id, runner);
        }
        runner.poke();
      }
      if (plan.stranded.length > 0 && Date.now() - strandedAt >= STRANDED_EVERY_MS) {
        strandedAt = Date.now();
        for (const id of plan.stranded) {
          const pipeline = byId.get(id);
          const node = nodes.find((n) => n.node_id === pipeline?.node_id);
          if (pipeline && node) await reportStranded(ctx.store, pipeline, node);
        }
      }
    } catch (error) {
      noteFailure('sync.claim', error);
    } finally {
      ticking = false;
    }
  };

  const timer = setInterval(() => void tick(), TICK_MS);
  void tick();
  return {
    close: async () => {
      closed = true;
      clearInterval(timer);
      while (ticking) await new Promise((resolve) => setTimeout(resolve, 20));
      for (const id of [...runners.keys()]) {
        retire(id, undefined, true); // the runner's own message: stopped with this process
      }
      await Promise.all([...retiring.values()].map((r) => r.done));
    },
  };
};

/**
 * A pipeline nobody can run (its node is dead and its instance out of every
 * live node's reach): its tables' status says why they wait, once.
 */
async function reportStranded(store: Store, pipeline: PlacedPipeline, node: NodeRow): Promise<void> {
  const message = `Pier node ${node.node_id}, where instance '${pipeline.instance_name}' runs, is not running (last heard from at ${node.heartbeat_at.toISOString()}), and no running node can reach its Postgres: the synced table catches up by itself once that node runs again.`;
  for (const table of await listSyncedTablesOfPipeline(store, pipeline.id)) {
    if (table.status.message === message) continue;
    const version = table.status.last_sync?.delta_table_sync_info?.delta_commit_version;
    await setStrandedStatus(
      store,
      table.id,
      failed(
        message,
        table.status.last_sync !== undefined,
        version === undefined ? undefined : Number(version),
      ),
      { id: node.node_id, heardAt: node.heartbeat_at },
    );
  }
}
