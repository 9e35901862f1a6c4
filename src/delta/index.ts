/**
 * Pier's Delta Lake reader: log replay (JSON commits, V1/V2 checkpoints,
 * log compaction), deletion vectors, column mapping, time travel and the
 * Change Data Feed, reading parquet with hyparquet.
 *
 * @example
 * import { openDeltaTable, readChanges } from './delta/index.js';
 * const snapshot = await openDeltaTable('/lake/daily_revenue');
 * for await (const rows of snapshot.scan()) console.log(rows.length);
 * for await (const rows of await readChanges('/lake/daily_revenue', 1)) console.log(rows);
 */
export type {
  AddCDCFile,
  AddFile,
  DeletionVectorDescriptor,
  Metadata,
  Protocol,
  RemoveFile,
} from './actions.js';
export { CHANGE_COLUMNS, type ChangeFeed, type ChangeType, readChanges, type VersionBound } from './cdf.js';
export { decodeZ85, loadDeletionVector } from './deletion-vector.js';
export { commitTime, type HistoryEntry, readHistory } from './history.js';
export { MAX_READER_VERSION, SUPPORTED_READER_FEATURES } from './protocol.js';
export { decodeRoaringBitmapArray } from './roaring.js';
export type { BatchColumn, ColumnBatch } from './scan.js';
export type { ColumnMappingMode, DeltaType, StructField, StructType } from './schema.js';
export { parseSchema, typeName } from './schema.js';
export { storageFor, type TableStorage } from './storage.js';
export { DeltaSnapshot, type OpenDeltaTableOptions, openDeltaTable, type ScanOptions } from './table.js';
export { type DeltaRow, type DeltaValue, parsePartitionValue, toSparkJson } from './values.js';
