import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';

export interface LoadResult {
  queries: number;
  failures: { at: number; message: string }[];
}

/**
 * A steady query load: `workers` loops, each running a query every
 * `pauseMs`, until `stop` resolves. Every failure is kept with its time.
 */
export function steadyLoad(pool: pg.Pool, options: { workers: number; pauseMs: number }) {
  const result: LoadResult = { queries: 0, failures: [] };
  let running = true;
  const loops = Array.from({ length: options.workers }, async () => {
    while (running) {
      try {
        await pool.query('SELECT 1');
        result.queries++;
      } catch (error) {
        result.failures.push({ at: Date.now(), message: (error as Error).message });
      }
      await sleep(options.pauseMs);
    }
  });
  return {
    result,
    async stop(): Promise<LoadResult> {
      running = false;
      await Promise.all(loops);
      return result;
    },
  };
}
