import { totalmem } from 'node:os';
import type { Capacity } from '../engine.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** Compute units per tier; Databricks gives each CU about 16 GB of memory. */
const COMPUTE_UNITS: Record<Capacity, number> = { CU_1: 1, CU_2: 2, CU_4: 4, CU_8: 8 };

/**
 * Postgres settings for a capacity tier. Memory follows the tier (16 GiB per
 * CU) but is capped so one instance never plans for more than its share of
 * this host: an eighth of host memory per CU, and never more than half of it.
 *
 * @example
 * capacitySettings('CU_2', 24 * 1024 ** 3).shared_buffers // '1536MB'
 */
export function capacitySettings(
  capacity: Capacity,
  hostMemoryBytes = totalmem(),
): Record<string, string | number> {
  const units = COMPUTE_UNITS[capacity];
  const memory = Math.min(units * 16 * GiB, (hostMemoryBytes / 8) * units, hostMemoryBytes / 2);
  const maxConnections = 250 * units;
  return {
    max_connections: maxConnections,
    shared_buffers: megabytes(memory / 4),
    effective_cache_size: megabytes((memory * 3) / 4),
    work_mem: megabytes(Math.max(4 * MiB, memory / 4 / maxConnections)),
    maintenance_work_mem: megabytes(Math.min(2 * GiB, Math.max(64 * MiB, memory / 16))),
    max_worker_processes: 4 + 2 * units,
    max_parallel_workers: 2 * units,
    max_wal_size: megabytes(Math.max(GiB, memory / 4)),
  };
}

function megabytes(bytes: number): string {
  return `${Math.max(1, Math.floor(bytes / MiB))}MB`;
}

/**
 * Postgres settings for a Lakebase Autoscaling compute of `computeUnits`
 * (0.5–64): the same rules as the Provisioned tiers, scaled to Autoscaling's
 * smaller unit (about 2 GB of memory and ~210 connections per CU, as
 * Databricks documents) and capped to this host's share (a sixty-fourth of
 * host memory per CU, never more than half of it).
 *
 * @example
 * computeUnitSettings(1, 32 * 1024 ** 3).max_connections // 209
 */
export function computeUnitSettings(
  computeUnits: number,
  hostMemoryBytes = totalmem(),
): Record<string, string | number> {
  const memory = Math.min(computeUnits * 2 * GiB, (hostMemoryBytes / 64) * computeUnits, hostMemoryBytes / 2);
  const maxConnections = Math.min(4000, Math.floor(computeUnits * 209.7));
  const workers = Math.max(1, Math.ceil(computeUnits / 4));
  return {
    max_connections: maxConnections,
    shared_buffers: megabytes(Math.max(16 * MiB, memory / 4)),
    effective_cache_size: megabytes((memory * 3) / 4),
    work_mem: megabytes(Math.max(4 * MiB, memory / 4 / maxConnections)),
    maintenance_work_mem: megabytes(Math.min(2 * GiB, Math.max(64 * MiB, memory / 16))),
    max_worker_processes: 4 + 2 * workers,
    max_parallel_workers: 2 * workers,
    max_wal_size: megabytes(Math.max(GiB, memory / 4)),
  };
}
