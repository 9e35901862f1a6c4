import { noteFailure } from '../failures.js';
import type { ComponentFactory } from '../server/pier.js';
import { claimLeases, releaseLease } from '../store/leases.js';
import { listNodePipelines, PIPELINE_LEASE } from './pipelines-store.js';
import { PipelineRunner } from './runner.js';

/** How long a claimed pipeline stays this process's without a renewal: a dead Pier's work is free after it. */
const LEASE_TTL_MS = 15_000;
/** Pipelines are claimed (leases renewed) and due updates looked for this often. */
const TICK_MS = 500;

/**
 * The sync workers of this Pier node: every pipeline whose instance runs
 * here (its Postgres socket is local) is claimed with the lease
 * ('sync_pipeline', id) and run by a PipelineRunner while the lease holds.
 * The holder is the node id, so a Pier restarted after kill -9 takes its
 * pipelines back at once; another process takes them when the lease expires.
 */
export const syncWorkers: ComponentFactory = async (ctx) => {
  const holder = ctx.config.nodeId;
  const runners = new Map<string, PipelineRunner>();
  let closed = false;
  let ticking = false;

  const tick = async () => {
    if (ticking || closed) return;
    ticking = true;
    try {
      const pipelines = await listNodePipelines(ctx.store, holder);
      const held = new Set(
        pipelines.length === 0
          ? []
          : await claimLeases(ctx.store, PIPELINE_LEASE, holder, {
              keys: pipelines.map((p) => p.id),
              ttlMs: LEASE_TTL_MS,
            }),
      );
      for (const [id, runner] of runners) {
        if (held.has(id)) continue;
        runners.delete(id);
        await runner.stop();
      }
      for (const pipeline of pipelines) {
        if (!held.has(pipeline.id) || closed) continue;
        let runner = runners.get(pipeline.id);
        if (!runner) {
          runner = new PipelineRunner(pipeline, ctx.store, ctx.engine);
          runners.set(pipeline.id, runner);
        }
        runner.poke();
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
      for (const [id, runner] of runners) {
        await runner.stop();
        await releaseLease(ctx.store, PIPELINE_LEASE, id, holder).catch((e) =>
          noteFailure('sync.release', e),
        );
      }
      runners.clear();
    },
  };
};
