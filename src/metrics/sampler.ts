import pg from 'pg';
import type { Engine } from '../engine/engine.js';
import { noteFailure } from '../failures.js';
import type { ComponentFactory } from '../server/pier.js';
import { insertMetricSample, listSampledInstances, type MetricSampleRow, pruneMetrics } from './store.js';

/** How often each running instance is sampled (PIER_METRICS_SAMPLE_MS overrides it, for tests). */
const DEFAULT_SAMPLE_MS = 15_000;
/** Old samples are pruned this often. */
const PRUNE_EVERY_MS = 10 * 60_000;

/**
 * What the console's charts and `/metrics` show of one instance, read from
 * pg_stat_database over every database but the templates. The sampler's own
 * connection is left out of the count.
 */
const SAMPLE_SQL = `
  SELECT coalesce(sum(numbackends), 0)::int - 1 AS connections,
         coalesce(sum(xact_commit + xact_rollback), 0)::text AS transactions,
         coalesce(sum(pg_database_size(d.oid)), 0)::text AS database_bytes,
         coalesce(sum(blks_hit), 0)::text AS blocks_hit,
         coalesce(sum(blks_read), 0)::text AS blocks_read
    FROM pg_stat_database s JOIN pg_database d ON d.oid = s.datid
   WHERE NOT d.datistemplate`;

async function sampleInstance(engine: Engine, uid: string): Promise<Omit<MetricSampleRow, 'sampled_at'>> {
  const client = new pg.Client(engine.superuserConnection(uid, 'postgres', 'pier metrics'));
  await client.connect();
  try {
    const { rows } = await client.query<Omit<MetricSampleRow, 'sampled_at'>>(SAMPLE_SQL);
    return { ...rows[0], connections: Math.max(0, rows[0].connections) };
  } finally {
    await client.end();
  }
}

/**
 * Samples every AVAILABLE instance this node runs into the store
 * (`instance_metric_samples`), and prunes what is older than a day.
 */
export const instanceMetrics: ComponentFactory = async (ctx) => {
  const everyMs = Number(process.env.PIER_METRICS_SAMPLE_MS) || DEFAULT_SAMPLE_MS;
  let running = false;
  let lastPrune = 0;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      const instances = await listSampledInstances(ctx.store, ctx.config.nodeId);
      await Promise.all(
        instances.map(async ({ uid, name }) => {
          try {
            await insertMetricSample(ctx.store, uid, await sampleInstance(ctx.engine, uid));
          } catch (error) {
            // Stopping, deleted or busy since the list was read: the next tick samples again.
            if (!(await ctx.engine.observe(uid).catch(() => undefined))?.ready) return;
            noteFailure('metrics.sample', new Error(`${name}: ${(error as Error).message}`));
          }
        }),
      );
      if (Date.now() - lastPrune > PRUNE_EVERY_MS) {
        lastPrune = Date.now();
        await pruneMetrics(ctx.store);
      }
    } catch (error) {
      noteFailure('metrics.sample', error);
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), everyMs);
  timer.unref();
  void tick();
  return {
    close: async () => {
      clearInterval(timer);
    },
  };
};
