import { PierError } from '../errors.js';
import type { Action, AddCDCFile, AddFile, Metadata, RemoveFile } from './actions.js';
import { commitTimestamp, listLog, readCommitActions } from './log.js';
import { changeDataFeedEnabled } from './protocol.js';
import {
  batchRows,
  type ColumnBatch,
  type ConstantColumn,
  type DataFile,
  deletedRows,
  readColumnBatches,
  type TableLayout,
} from './scan.js';
import type { StructType } from './schema.js';
import { type FileStatus, storageFor, type TableStorage } from './storage.js';
import { commitTimeline, openDeltaTable, toMillis } from './table.js';
import { type DeltaRow, type DeltaValue, formatTimestamp } from './values.js';

/**
 * Change Data Feed (PROTOCOL.md, "Add CDC File"): the row-level changes of
 * a range of versions. A version with `cdc` actions is read only from its
 * change data files; otherwise its `add`s are inserts and its `remove`s
 * deletes, and a file re-added with a different deletion vector yields just
 * the rows whose deletion state changed.
 */

export type ChangeType = 'insert' | 'delete' | 'update_preimage' | 'update_postimage';

/** A version bound: a version number, or a time (first version at/after it for the start, last at/before it for the end). */
export type VersionBound = number | { timestamp: Date | number | string };

/** The three columns every change row has besides the table's own. */
export const CHANGE_COLUMNS = [
  { name: '_change_type', type: { type: 'string' as const }, nullable: false, metadata: {} },
  { name: '_commit_version', type: { type: 'long' as const }, nullable: false, metadata: {} },
  { name: '_commit_timestamp', type: { type: 'timestamp' as const }, nullable: false, metadata: {} },
];

/** The changes between two versions, inclusive; iterate it for batches of rows. */
export interface ChangeFeed extends AsyncIterable<DeltaRow[]> {
  /** The table's columns followed by `_change_type`, `_commit_version`, `_commit_timestamp`. */
  schema: StructType;
  startVersion: number;
  endVersion: number;
  /** The same changes column by column, one batch per row group, without building rows. */
  columnBatches(): AsyncGenerator<ColumnBatch>;
}

/**
 * Reads the Change Data Feed of a table from `fromVersion` to `toVersion`
 * (latest when omitted), both inclusive.
 *
 * @example
 * const changes = await readChanges('/lake/daily_revenue', 1);
 * for await (const rows of changes) for (const row of rows) console.log(row._change_type, row._commit_version);
 */
export async function readChanges(
  location: string,
  fromVersion: VersionBound,
  toVersion?: VersionBound,
): Promise<ChangeFeed> {
  const storage = storageFor(location);
  const listing = await listLog(storage);
  const available = [...listing.commits.keys()].sort((a, b) => a - b);
  if (available.length === 0) {
    throw new PierError(
      'RESOURCE_DOES_NOT_EXIST',
      `No Delta table at ${location}: _delta_log has no commits.`,
    );
  }
  const latest = available[available.length - 1];
  const startVersion = await resolveBound(storage, fromVersion, 'start');
  const endVersion = toVersion === undefined ? latest : await resolveBound(storage, toVersion, 'end');
  if (startVersion > endVersion) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `Change data range is empty: start version ${startVersion} is after end version ${endVersion}.`,
    );
  }
  if (endVersion > latest) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `Delta table at ${location} has no version ${endVersion}; the latest is ${latest}.`,
    );
  }
  for (let version = startVersion; version <= endVersion; version++) {
    if (!listing.commits.has(version)) {
      throw new PierError(
        'INVALID_PARAMETER_VALUE',
        `Delta table at ${location} no longer has the commit of version ${version} (its log was cleaned up); ` +
          `read changes from version ${available.find((v) => v > version) ?? latest} or later.`,
      );
    }
  }
  const end = await openDeltaTable(location, { version: endVersion });
  let metadata = (
    startVersion === endVersion ? end : await openDeltaTable(location, { version: startVersion })
  ).metadata;
  // Read and check every commit before the first row: a range that cannot be read fails up front.
  const commits: CommitChanges[] = [];
  for (let version = startVersion; version <= endVersion; version++) {
    const file = listing.commits.get(version)!.file;
    const changes = classify(await readCommitActions(storage, file.name), version, file);
    metadata = changes.metadata ?? metadata;
    const hasChanges = changes.cdcFiles.length + changes.adds.length + changes.removes.length > 0;
    if (hasChanges && !changeDataFeedEnabled(metadata)) {
      throw new PierError(
        'INVALID_STATE',
        `Change data feed is not enabled on the Delta table at ${location} at version ${version}; ` +
          'set delta.enableChangeDataFeed = true and read changes from a later version.',
      );
    }
    if (hasChanges) commits.push(changes);
  }
  const schema: StructType = { type: 'struct', fields: [...end.schema.fields, ...CHANGE_COLUMNS] };
  const layout = end.layout;
  async function* columnBatches(): AsyncGenerator<ColumnBatch> {
    for (const commit of commits) yield* changesOfCommit(layout, commit);
  }
  return {
    schema,
    startVersion,
    endVersion,
    columnBatches,
    async *[Symbol.asyncIterator]() {
      for await (const batch of columnBatches()) yield batchRows(batch);
    },
  };
}

/** The data-changing actions of one commit. */
interface CommitChanges {
  cdcFiles: AddCDCFile[];
  adds: AddFile[];
  removes: RemoveFile[];
  metadata?: Metadata;
  /** `_commit_version` and `_commit_timestamp`. */
  constants: ConstantColumn[];
}

function classify(actions: Action[], version: number, file: FileStatus): CommitChanges {
  const changes: CommitChanges = {
    cdcFiles: [],
    adds: [],
    removes: [],
    constants: [
      changeColumn('_commit_version', BigInt(version)),
      changeColumn(
        '_commit_timestamp',
        formatTimestamp(BigInt(commitTimestamp(actions, file)) * 1000n, true),
      ),
    ],
  };
  for (const action of actions) {
    if ('cdc' in action) changes.cdcFiles.push(action.cdc);
    // dataChange=false marks rearrangements (OPTIMIZE and the like), not changes.
    else if ('add' in action && action.add.dataChange) changes.adds.push(action.add);
    else if ('remove' in action && action.remove.dataChange) changes.removes.push(action.remove);
    else if ('metaData' in action) changes.metadata = action.metaData;
  }
  return changes;
}

async function* changesOfCommit(layout: TableLayout, commit: CommitChanges): AsyncGenerator<ColumnBatch> {
  const { constants } = commit;
  if (commit.cdcFiles.length > 0) {
    for (const cdc of commit.cdcFiles) {
      yield* readColumnBatches(layout, cdc, {
        rows: { exclude: [] },
        extraColumns: [{ name: '_change_type', type: { type: 'string' } }],
        constants,
      });
    }
    return;
  }
  const addsByPath = new Map(commit.adds.map((add) => [add.path, add]));
  const pairedAdds = new Set<AddFile>();
  for (const remove of commit.removes) {
    const add = addsByPath.get(remove.path);
    if (add) {
      pairedAdds.add(add);
      yield* deletionVectorChanges(layout, remove, add, constants);
    } else {
      yield* withChangeType(
        layout,
        { ...remove, partitionValues: remove.partitionValues ?? {} },
        'delete',
        constants,
      );
    }
  }
  for (const add of commit.adds) {
    if (!pairedAdds.has(add)) yield* withChangeType(layout, add, 'insert', constants);
  }
}

/** A file removed and re-added with another deletion vector: rows newly deleted, and rows restored. */
async function* deletionVectorChanges(
  layout: TableLayout,
  remove: RemoveFile,
  add: AddFile,
  constants: ConstantColumn[],
): AsyncGenerator<ColumnBatch> {
  const before = await deletedRows(layout.storage, remove.deletionVector);
  const after = await deletedRows(layout.storage, add.deletionVector);
  const beforeSet = new Set(before);
  const afterSet = new Set(after);
  const newlyDeleted = after.filter((row) => !beforeSet.has(row));
  const restored = before.filter((row) => !afterSet.has(row));
  const file: DataFile = { path: add.path, partitionValues: add.partitionValues };
  yield* readColumnBatches(layout, file, {
    rows: { only: newlyDeleted },
    constants: [changeColumn('_change_type', 'delete'), ...constants],
  });
  yield* readColumnBatches(layout, file, {
    rows: { only: restored },
    constants: [changeColumn('_change_type', 'insert'), ...constants],
  });
}

function withChangeType(
  layout: TableLayout,
  file: DataFile,
  changeType: ChangeType,
  constants: ConstantColumn[],
) {
  return readColumnBatches(layout, file, {
    constants: [changeColumn('_change_type', changeType), ...constants],
  });
}

/** One of the change columns, with its type, holding `value` in every row. */
function changeColumn(name: (typeof CHANGE_COLUMNS)[number]['name'], value: DeltaValue): ConstantColumn {
  const { type } = CHANGE_COLUMNS.find((column) => column.name === name) as (typeof CHANGE_COLUMNS)[number];
  return { name, type, value };
}

async function resolveBound(
  storage: TableStorage,
  bound: VersionBound,
  side: 'start' | 'end',
): Promise<number> {
  if (typeof bound === 'number') {
    if (!Number.isInteger(bound) || bound < 0) {
      throw new PierError(
        'INVALID_PARAMETER_VALUE',
        `Delta version must be a non-negative integer, got ${bound}.`,
      );
    }
    return bound;
  }
  const millis = toMillis(bound.timestamp);
  const timeline = await commitTimeline(storage);
  const match =
    side === 'start'
      ? timeline.find((commit) => commit.timestamp >= millis)
      : timeline.filter((commit) => commit.timestamp <= millis).at(-1);
  if (!match) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `Delta table at ${storage.location} has no commit ${side === 'start' ? 'at or after' : 'at or before'} ${new Date(millis).toISOString()}.`,
    );
  }
  return match.version;
}
