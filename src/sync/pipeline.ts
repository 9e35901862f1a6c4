import type pg from 'pg';
import { type DeltaSnapshot, openDeltaTable, storageFor } from '../delta/index.js';
import { listLog } from '../delta/log.js';
import { isPierError } from '../errors.js';
import { applyChanges } from './changes.js';
import { type TargetLayout, targetLayout } from './columns.js';
import { evolveTarget } from './evolve.js';
import { SyncFailure } from './failure.js';
import { snapshotInto } from './snapshot.js';
import { ensureProgressTable, readProgress, type SyncTarget } from './target.js';

/** How a synced table follows its source (the SDK's `SyncedTableSchedulingPolicy`). */
export type SchedulingPolicy = 'SNAPSHOT' | 'TRIGGERED' | 'CONTINUOUS';

/** What one synced table copies from where to where. */
export interface SyncDefinition {
  /** The source's storage location (a directory or file:// URI). */
  location: string;
  /** The source's three-part name, for messages. */
  sourceName: string;
  target: SyncTarget;
  primaryKey: string[];
  timeseriesKey?: string;
  policy: SchedulingPolicy;
}

export type SyncOutcome =
  | { kind: 'snapshot'; deltaVersion: number; rows: number; skippedNullKeys: number }
  | {
      kind: 'changes';
      deltaVersion: number;
      changes: number;
      upserted: number;
      deleted: number;
      skippedNullKeys: number;
      addedColumns: string[];
    }
  | { kind: 'up-to-date'; deltaVersion: number };

/**
 * Tables that take updates in place (TRIGGERED, CONTINUOUS) leave a tenth of
 * each page free, so an upsert can stay on its page as a HOT update: no new
 * index entry, no new page (bench/results/sync-fillfactor-*.md). A SNAPSHOT
 * table is only ever replaced whole, so its pages are filled.
 */
function fillfactorFor(policy: SchedulingPolicy): number {
  return policy === 'SNAPSHOT' ? 100 : 90;
}

/** At most this many Delta versions are applied in one transaction. */
const VERSIONS_PER_BATCH = 100;

/**
 * One pass of a synced table: a snapshot when the table has none yet, when
 * asked (`fullRefresh`) or under SNAPSHOT when the source moved; otherwise
 * the Change Data Feed since the last applied version, in batches of whole
 * versions. Everything it writes goes with the version it reflects, in one
 * transaction, so a crash at any point loses and repeats nothing.
 *
 * @example
 * const outcome = await syncOnce(client, definition);
 * if (outcome.kind === 'changes') console.log(outcome.upserted, outcome.deleted);
 */
export async function syncOnce(
  client: pg.ClientBase,
  definition: SyncDefinition,
  options: {
    fullRefresh?: boolean;
    onProgress?: (synced: number, total?: number) => void;
    /** Owner and readers a snapshot gives its new table (the pipeline's writer and reader roles). */
    owner?: string;
    readers?: string[];
  } = {},
): Promise<SyncOutcome> {
  const latest = await latestVersion(definition);
  await ensureProgressTable(client);
  const progress = await readProgress(client, definition.target);
  const snapshotWanted =
    options.fullRefresh ||
    !progress ||
    (definition.policy === 'SNAPSHOT' && progress.deltaVersion !== latest);
  if (snapshotWanted) {
    const snapshot = await open(definition, latest);
    const layout = layoutOf(snapshot, definition);
    const result = await classify(definition, () =>
      snapshotInto(client, {
        snapshot,
        target: definition.target,
        layout,
        ...(options.owner ? { owner: options.owner } : {}),
        ...(options.readers ? { readers: options.readers } : {}),
        fillfactor: fillfactorFor(definition.policy),
        onProgress: (p) => options.onProgress?.(p.syncedRows, p.totalRows),
      }),
    );
    return { kind: 'snapshot', ...result };
  }
  if (progress.deltaVersion >= latest) return { kind: 'up-to-date', deltaVersion: progress.deltaVersion };
  const toVersion = Math.min(latest, progress.deltaVersion + VERSIONS_PER_BATCH);
  const layout = layoutOf(await open(definition, toVersion), definition);
  const addedColumns = await evolveTarget(client, definition.target, layout, definition.sourceName);
  const result = await classify(definition, () =>
    applyChanges(client, { location: definition.location, target: definition.target, layout, toVersion }),
  );
  return { kind: 'changes', ...result, addedColumns };
}

/** The newest committed version of the source, from a listing of its log (no replay). */
async function latestVersion(definition: Pick<SyncDefinition, 'location' | 'sourceName'>): Promise<number> {
  let versions: number[];
  try {
    versions = [...(await listLog(storageFor(definition.location))).commits.keys()];
  } catch (cause) {
    throw sourceMissing(definition, cause);
  }
  if (versions.length === 0) throw sourceMissing(definition);
  return Math.max(...versions);
}

function sourceMissing(definition: Pick<SyncDefinition, 'sourceName'>, cause?: unknown): SyncFailure {
  return new SyncFailure(
    'SOURCE_MISSING',
    `The source table ${definition.sourceName} has no Delta log any more (dropped, or its files moved). The synced table keeps its rows and resumes when the source is back; to follow another table, create a new synced table.`,
    false,
    { cause },
  );
}

async function open(definition: SyncDefinition, version: number): Promise<DeltaSnapshot> {
  return classify(definition, () => openDeltaTable(definition.location, { version }));
}

function layoutOf(snapshot: DeltaSnapshot, definition: SyncDefinition): TargetLayout {
  return targetLayout(snapshot.schema, {
    primaryKey: definition.primaryKey,
    ...(definition.timeseriesKey ? { timeseriesKey: definition.timeseriesKey } : {}),
    source: definition.sourceName,
  });
}

/** Turns what the reader and the engine say about the data into a SyncFailure with its fix. */
async function classify<T>(definition: SyncDefinition, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof SyncFailure || !isPierError(error)) throw error;
    const message = error.message;
    if (message.startsWith('PRIMARY_KEY_CONSTRAINT_VIOLATION')) {
      throw new SyncFailure('PRIMARY_KEY_CONSTRAINT_VIOLATION', message, true, { cause: error });
    }
    if (/no longer has the commit|has no version|no Delta table|_delta_log has no commits/i.test(message)) {
      throw new SyncFailure(
        'HISTORY_GONE',
        `The source table ${definition.sourceName} no longer has the Delta history this synced table needs (its log was cleaned up past the last synced version). Run a full refresh: pier database sync-synced-table <name> --full-refresh.`,
        true,
        { cause: error },
      );
    }
    if (/Change data feed is not enabled/i.test(message)) {
      throw new SyncFailure(
        'CHANGE_DATA_FEED_DISABLED',
        `The Change Data Feed is off on ${definition.sourceName} for the versions to sync. Set the table property delta.enableChangeDataFeed = true, then run a full refresh.`,
        true,
        { cause: error },
      );
    }
    if (/NUL character/.test(message)) throw new SyncFailure('NUL_IN_TEXT', message, false, { cause: error });
    throw error;
  }
}
