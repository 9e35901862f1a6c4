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
