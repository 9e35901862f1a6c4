import { PierError } from '../errors.js';
import type { AddFile, Metadata, Protocol } from './actions.js';
import { commitTimestamp, listLog, logSegment, readCommitActions, replay } from './log.js';
import { checkReadable, columnMappingMode } from './protocol.js';
import { batchRows, type ColumnBatch, readColumnBatches, readDataFile, type TableLayout } from './scan.js';
import { type ColumnMappingMode, parseSchema, type StructType } from './schema.js';
import { storageFor, type TableStorage } from './storage.js';
import type { DeltaRow } from './values.js';

/** Which version to read: the latest, a version number, or the version current at a time. */
export interface OpenDeltaTableOptions {
  version?: number;
  /** A `Date`, milliseconds since the epoch, or an ISO-8601 string. */
  timestamp?: Date | number | string;
  /**
   * Time zone of the writer, for `timestamp` partition values written
   * without a zone (older Spark writes them in its session zone). IANA name;
   * default UTC.
   */
  partitionTimeZone?: string;
}

export interface ScanOptions {
  /** Stop after this many rows. */
  limit?: number;
}

/**
 * One version of a Delta table: its schema, protocol, metadata and live
 * files, and a streaming scan of its rows.
 */
export class DeltaSnapshot {
  readonly schema: StructType;
  readonly partitionColumns: string[];
  readonly columnMapping: ColumnMappingMode;

  constructor(
    readonly storage: TableStorage,
    readonly version: number,
    readonly protocol: Protocol,
    readonly metadata: Metadata,
    /** Live data files (`add` actions after reconciliation). */
    readonly files: AddFile[],
    readonly partitionTimeZone?: string,
  ) {
    this.schema = parseSchema(metadata.schemaString);
    this.partitionColumns = metadata.partitionColumns;
    this.columnMapping = columnMappingMode(protocol, metadata);
  }

  get location(): string {
    return this.storage.location;
  }

  /** What a file reader needs to know about this version's layout. */
  get layout(): TableLayout {
    return {
      storage: this.storage,
      schema: this.schema,
      partitionColumns: this.partitionColumns,
      columnMapping: this.columnMapping,
      partitionTimeZone: this.partitionTimeZone,
    };
  }

  /** Streams the rows of one of this version's files, deletion vector applied. */
  scanFile(file: AddFile): AsyncGenerator<DeltaRow[]> {
    return readDataFile(this.layout, file);
  }

  /**
   * Streams the rows of this version in batches (one per parquet row group),
   * deletion vectors applied, partition values filled in.
   *
   * @example
   * const snapshot = await openDeltaTable('/lake/daily_revenue');
   * for await (const rows of snapshot.scan()) for (const row of rows) console.log(row.region);
   */
  async *scan(options: ScanOptions = {}): AsyncGenerator<DeltaRow[]> {
    let remaining = options.limit ?? Number.POSITIVE_INFINITY;
    if (remaining <= 0) return;
    for await (const batch of this.scanColumns()) {
      const rows = batchRows(batch.length > remaining ? limitBatch(batch, remaining) : batch);
      remaining -= rows.length;
      yield rows;
      if (remaining <= 0) return;
    }
  }

  /**
   * The same rows as {@link scan}, column by column (one batch per row
   * group, values as decoded), for consumers that encode values straight
   * into bytes without building row objects.
   *
   * @example
   * for await (const batch of snapshot.scanColumns()) console.log(batch.length, batch.columns.map((c) => c.name));
   */
  async *scanColumns(): AsyncGenerator<ColumnBatch> {
    const layout = this.layout;
    for (const file of this.files) yield* readColumnBatches(layout, file);
  }
}

/**
 * Opens a Delta table at its latest version, or travels to a version or a
 * point in time. Fails with a clear `PierError` when the table is missing,
 * its log is broken, or it needs a reader feature Pier lacks.
 *
 * @example
 * const latest = await openDeltaTable('/lake/daily_revenue');
 * const old = await openDeltaTable('file:///lake/daily_revenue', { version: 3 });
 * const asOf = await openDeltaTable('/lake/daily_revenue', { timestamp: '2024-06-01T00:00:00Z' });
 */
export async function openDeltaTable(
  location: string,
  options: OpenDeltaTableOptions = {},
): Promise<DeltaSnapshot> {
  const storage = storageFor(location);
  if (options.version !== undefined && options.timestamp !== undefined) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      'Give either a version or a timestamp to time travel, not both.',
    );
  }
  if (options.version !== undefined && (!Number.isInteger(options.version) || options.version < 0)) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `Delta version must be a non-negative integer, got ${options.version}.`,
    );
  }
  const version =
    options.timestamp !== undefined
      ? await versionAtOrBefore(storage, toMillis(options.timestamp))
      : options.version;
  const state = await replay(storage, await logSegment(storage, version));
  checkReadable(location, state.protocol);
  return new DeltaSnapshot(
    storage,
    state.version,
    state.protocol,
    state.metadata,
    state.files,
    options.partitionTimeZone,
  );
}

/** Commit versions with their timestamps (ms), oldest first, for the commits still in the log. */
export async function commitTimeline(
  storage: TableStorage,
): Promise<{ version: number; timestamp: number }[]> {
  const listing = await listLog(storage);
  const commits = [...listing.commits.values()].sort((a, b) => a.version - b.version);
  return Promise.all(
    commits.map(async (commit) => ({
      version: commit.version,
      timestamp: commitTimestamp(await readCommitActions(storage, commit.file.name), commit.file),
    })),
  );
}

/** The latest version committed at or before `millis`. */
async function versionAtOrBefore(storage: TableStorage, millis: number): Promise<number> {
  const timeline = await commitTimeline(storage);
  const candidates = timeline.filter((commit) => commit.timestamp <= millis);
  if (candidates.length === 0) {
    const first = timeline[0];
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      first
        ? `Delta table at ${storage.location} has no version at ${new Date(millis).toISOString()}; ` +
            `its earliest available commit (version ${first.version}) is from ${new Date(first.timestamp).toISOString()}.`
        : `No Delta table at ${storage.location}: _delta_log has no commits.`,
    );
  }
  return candidates[candidates.length - 1].version;
}

export function toMillis(timestamp: Date | number | string): number {
  const millis =
    timestamp instanceof Date
      ? timestamp.getTime()
      : typeof timestamp === 'number'
        ? timestamp
        : parseTimestampText(timestamp);
  if (!Number.isFinite(millis)) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `'${String(timestamp)}' is not a timestamp (use ISO-8601).`,
    );
  }
  return millis;
}

/** ISO-8601; text without a zone is UTC, as Pier reads all zone-less times. */
function parseTimestampText(text: string): number {
  const trimmed = text.trim();
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(trimmed) && /T|\s/.test(trimmed);
  const isoLike = trimmed.replace(' ', 'T');
  return Date.parse(hasZone || /^\d{4}-\d{2}-\d{2}$/.test(trimmed) ? isoLike : `${isoLike}Z`);
}

/** The first `length` rows of a batch. */
function limitBatch(batch: ColumnBatch, length: number): ColumnBatch {
  const positions = batch.positions ? batch.positions.subarray(0, length) : undefined;
  return { ...batch, length, ...(positions ? { positions } : {}) };
}
