import { parseSchema, storageFor } from '../delta/index.js';
import { logSegment, replay } from '../delta/log.js';
import { invalidParameter, PierError } from '../errors.js';
import { assertSyncableSchema, targetLayout } from './columns.js';
import type { SchedulingPolicy } from './pipeline.js';

/**
 * The creation rules that read the source's Delta log: types synced tables
 * can carry, the primary key (and timeseries key) among its columns, and
 * the Change Data Feed where the policy follows changes.
 */
export async function checkSource(options: {
  path: string;
  sourceName: string;
  primaryKey: string[];
  timeseriesKey?: string;
  policy: SchedulingPolicy;
}): Promise<void> {
  let metadata: { schemaString: string; configuration: Record<string, string> };
  try {
    const storage = storageFor(options.path);
    metadata = (await replay(storage, await logSegment(storage))).metadata;
  } catch (cause) {
    throw new PierError(
      'INVALID_STATE',
      `Cannot read the Delta log of ${options.sourceName}: ${(cause as Error).message}`,
      { cause },
    );
  }
  assertSyncableSchema(metadata.schemaString, options.sourceName);
  targetLayout(parseSchema(metadata.schemaString), {
    primaryKey: options.primaryKey,
    ...(options.timeseriesKey ? { timeseriesKey: options.timeseriesKey } : {}),
    source: options.sourceName,
  });
  const cdf = metadata.configuration?.['delta.enableChangeDataFeed']?.toLowerCase() === 'true';
  if (options.policy !== 'SNAPSHOT' && !cdf) {
    throw invalidParameter(
      `Source table ${options.sourceName} does not have the Change Data Feed on, which scheduling_policy ${options.policy} needs. ` +
        `Set the table property delta.enableChangeDataFeed = true (ALTER TABLE … SET TBLPROPERTIES (delta.enableChangeDataFeed = true)), or use scheduling_policy SNAPSHOT.`,
    );
  }
}
