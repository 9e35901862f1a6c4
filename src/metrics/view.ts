import { type MetricFamily, pierMetrics } from './registry.js';
import type { MetricSampleRow, SyncPassRow } from './store.js';

/**
 * Samples as chart points: connections and database size as sampled;
 * transactions per second and the cache hit ratio between one sample and
 * the one before (a counter reset, after a restart, starts afresh).
 */
export function metricPointsView(samples: MetricSampleRow[]) {
  const points = samples.map((sample, i) => {
    const before = samples[i - 1];
    const seconds = before ? (sample.sampled_at.getTime() - before.sampled_at.getTime()) / 1000 : 0;
    const delta = (field: 'transactions' | 'blocks_hit' | 'blocks_read') => {
      if (!before) return undefined;
      const d = BigInt(sample[field]) - BigInt(before[field]);
      return d < 0n ? undefined : Number(d);
    };
    const transactions = delta('transactions');
    const hit = delta('blocks_hit');
    const read = delta('blocks_read');
    return {
      time: sample.sampled_at.toISOString(),
      connections: sample.connections,
      database_size_bytes: sample.database_bytes,
      transactions_per_second:
        transactions !== undefined && seconds > 0 ? Number((transactions / seconds).toFixed(2)) : null,
      cache_hit_ratio:
        hit !== undefined && read !== undefined && hit + read > 0
          ? Number((hit / (hit + read)).toFixed(4))
          : null,
    };
  });
  return { points };
}

export function syncPassesView(passes: SyncPassRow[]) {
  return {
    passes: passes.map((pass) => ({
      time: pass.ended_at.toISOString(),
      rows_synced: Number(pass.rows_synced),
      delta_version: pass.delta_version,
      ...(pass.lag_ms !== null ? { lag_ms: Number(pass.lag_ms) } : {}),
      duration_ms: pass.duration_ms,
    })),
  };
}

/**
 * Instance gauges for `/metrics` from the newest samples: connections and
 * size as sampled, and the two cumulative counters Prometheus computes rates
 * and ratios from.
 */
export function instanceFamilies(
  latest: (MetricSampleRow & { name: string; rank: number })[],
): MetricFamily[] {
  const newest = latest.filter((s) => s.rank === 1);
  const family = (
    name: string,
    help: string,
    type: MetricFamily['type'],
    value: (s: MetricSampleRow) => number | bigint,
  ): MetricFamily => ({
    name,
    help,
    type,
    samples: newest.map((s) => ({ labels: { instance: s.name }, value: value(s) })),
  });
  return [
    family(
      'pier_instance_connections',
      'Client backends connected to the instance (last sample).',
      'gauge',
      (s) => s.connections,
    ),
    family('pier_instance_database_size_bytes', 'Size of every database of the instance.', 'gauge', (s) =>
      BigInt(s.database_bytes),
    ),
    family(
      'pier_instance_transactions_total',
      'Transactions committed or rolled back (use rate()).',
      'counter',
      (s) => BigInt(s.transactions),
    ),
    family(
      'pier_instance_blocks_hit_total',
      'Buffer cache hits (hit ratio: hit / (hit + read)).',
      'counter',
      (s) => BigInt(s.blocks_hit),
    ),
    family('pier_instance_blocks_read_total', 'Blocks read from disk.', 'counter', (s) =>
      BigInt(s.blocks_read),
    ),
    {
      name: 'pier_instance_cache_hit_ratio',
      help: 'Cache hit ratio between the two newest samples.',
      type: 'gauge',
      samples: newest.flatMap((s) => {
        const before = latest.find((b) => b.name === s.name && b.rank === 2);
        if (!before) return [];
        const hit = Number(BigInt(s.blocks_hit) - BigInt(before.blocks_hit));
        const read = Number(BigInt(s.blocks_read) - BigInt(before.blocks_read));
        return hit + read > 0 && hit >= 0 && read >= 0
          ? [{ labels: { instance: s.name }, value: hit / (hit + read) }]
          : [];
      }),
    },
  ];
}

/** Pier's own counters and histograms. */
export function processFamilies(failures: Record<string, number>): MetricFamily[] {
  return [
    pierMetrics.apiRequests.family(),
    pierMetrics.proxyConnections.family(),
    pierMetrics.proxyAuthFailures.family(),
    pierMetrics.reconcilePasses.family(),
    pierMetrics.syncPasses.family(),
    {
      name: 'pier_recovered_failures_total',
      help: 'Background failures Pier logged and recovered from, by kind.',
      type: 'counter',
      samples: Object.entries(failures).map(([kind, value]) => ({ labels: { kind }, value })),
    },
  ];
}

/** The Pier nodes on this store, as this node judges them: alert on `pier_node_up == 0`. */
export function nodeFamilies(
  nodes: { node_id: string; alive: boolean; instances: number; pipelines: number }[],
): MetricFamily[] {
  const family = (
    name: string,
    help: string,
    value: (node: (typeof nodes)[number]) => number,
  ): MetricFamily => ({
    name,
    help,
    type: 'gauge',
    samples: nodes.map((node) => ({ labels: { node: node.node_id }, value: value(node) })),
  });
  return [
    family('pier_node_up', 'Whether the Pier node is running (1) or not responding or stopped (0).', (n) =>
      n.alive ? 1 : 0,
    ),
    family('pier_node_instances', 'Instances that run on the node.', (n) => n.instances),
    family(
      'pier_node_sync_pipelines',
      'Sync pipelines the node runs now (its own and those it took over).',
      (n) => n.pipelines,
    ),
  ];
}
