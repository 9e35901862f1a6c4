import type { SchemaTree } from 'hyparquet';
import { parquetScan } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import type { DeletionVectorDescriptor } from './actions.js';
import { loadDeletionVector } from './deletion-vector.js';
import {
  type Converter,
  converterFor,
  findParquetChild,
  rawParsers,
  readFooter,
  schemaTree,
} from './parquet.js';
import type { ColumnMappingMode, DeltaType, StructType } from './schema.js';
import { physicalName } from './schema.js';
import type { TableStorage } from './storage.js';
import { type DeltaRow, type DeltaValue, parsePartitionValue } from './values.js';

/**
 * Reading data files: one parquet file at a time, one row group at a time
 * (memory stays bounded by the largest row group), partition values filled
 * in from the log and deleted rows dropped.
 */

/** How a table's files are laid out: what a scan needs besides the file list. */
export interface TableLayout {
  storage: TableStorage;
  schema: StructType;
  partitionColumns: string[];
  columnMapping: ColumnMappingMode;
  /** Zone of zone-less timestamp partition values (IANA name; default UTC). */
  partitionTimeZone?: string;
}

/** A data or change-data file as the log names it. */
export interface DataFile {
  path: string;
  partitionValues: Record<string, string | null>;
  deletionVector?: DeletionVectorDescriptor;
}

/** A column with one value for every row of a file. */
export interface ConstantColumn {
  name: string;
  type: DeltaType;
  value: DeltaValue;
}

/** Rows to keep by physical position in the file: all but `exclude`, or only `only` (ascending). */
export type RowSelection = { exclude: number[] } | { only: number[] };

export interface ReadFileOptions {
  /** Defaults to excluding the file's deletion vector. */
  rows?: RowSelection;
  /** Columns read from the file that are not in the table schema (e.g. `_change_type`). */
  extraColumns?: { name: string; type: DeltaType }[];
  /** Fixed values added to every row (e.g. `_commit_version`). */
  constants?: ConstantColumn[];
  /** The most rows per batch (default {@link MAX_BATCH_ROWS}). */
  maxBatchRows?: number;
}

/** `add.path` is a URI: relative paths are percent-encoded, absolute ones are URIs. */
export function dataFilePath(path: string): string {
  return /^[a-z][a-z0-9+.-]*:/i.test(path) ? path : decodeURIComponent(path);
}

/** Row positions a file's deletion vector removes (empty without one). */
export async function deletedRows(
  storage: TableStorage,
  dv: DeletionVectorDescriptor | undefined,
): Promise<number[]> {
  return dv ? loadDeletionVector(storage, dv) : [];
}

interface ColumnPlan {
  name: string;
  type: DeltaType;
  /** Parquet top-level column to read, or undefined for a constant. */
  parquetColumn?: string;
  node?: SchemaTree;
  convert?: Converter;
  constant?: DeltaValue;
}

/**
 * One column of a {@link ColumnBatch}: the values as the parquet decoder
 * left them (`raw`, turned into Delta values by `convert`), or one value for
 * every row (`constant`: partition values, columns missing from the file).
 */
export interface BatchColumn {
  name: string;
  type: DeltaType;
  /** Decoded values, indexed by position in the row group; undefined for a constant column. */
  raw?: ArrayLike<unknown>;
  /** Raw value → Delta value (values.ts). */
  convert: Converter;
  /** The parquet column's schema node (physical type, decimal scale); undefined for a constant. */
  node?: SchemaTree;
  constant: DeltaValue;
}

/**
 * The rows of one row group, column by column, before any row object
 * exists: consumers that turn values straight into bytes (COPY) read these,
 * and {@link readDataFile} builds rows from them.
 */
export interface ColumnBatch {
  /** Rows in the batch. */
  length: number;
  /** The positions in `raw` of the batch's rows, in order; undefined when they are 0 … length-1. */
  positions?: Int32Array;
  columns: BatchColumn[];
}

/** Strings as their UTF-8 bytes: top-level string columns skip decoding (their converter decodes). */
const byteParsers = { ...rawParsers, stringFromBytes: (bytes: Uint8Array) => bytes };

/**
 * Streams the rows of one file as batches of rows (one per row group).
 *
 * @example
 * for await (const rows of readDataFile(layout, add)) console.log(rows.length);
 */
export async function* readDataFile(
  layout: TableLayout,
  file: DataFile,
  options: ReadFileOptions = {},
): AsyncGenerator<DeltaRow[]> {
  for await (const batch of readColumnBatches(layout, file, options)) yield batchRows(batch);
}

/** The rows of a column batch as objects keyed by column name. */
export function batchRows(batch: ColumnBatch): DeltaRow[] {
  const { columns, positions, length } = batch;
  const values = columns.map((column) => {
    if (!column.raw) return null;
    const out = new Array<DeltaValue>(length);
    const { raw, convert } = column;
    for (let r = 0; r < length; r++) out[r] = convert(raw[positions ? positions[r] : r]);
    return out;
  });
  const rows = new Array<DeltaRow>(length);
  for (let r = 0; r < length; r++) {
    const row: DeltaRow = {};
    for (let c = 0; c < columns.length; c++) {
      const column = values[c];
      row[columns[c].name] = column === null ? columns[c].constant : column[r];
    }
    rows[r] = row;
  }
  return rows;
}

/**
 * Streams the rows of one file column by column, one batch per row group
 * (or per slice of a large one, see {@link MAX_BATCH_ROWS}): only the batch
 * being read is decoded, and nothing of it is kept once the consumer moves
 * on to the next.
 *
 * @example
 * for await (const batch of readColumnBatches(layout, add)) console.log(batch.length);
 */
export async function* readColumnBatches(
  layout: TableLayout,
  file: DataFile,
  options: ReadFileOptions = {},
): AsyncGenerator<ColumnBatch> {
  const selection = options.rows ?? { exclude: await deletedRows(layout.storage, file.deletionVector) };
  if ('only' in selection && selection.only.length === 0) return;
  const buffer = await layout.storage.openParquet(dataFilePath(file.path));
  const metadata = await readFooter(buffer);
  const root = schemaTree(metadata);
  const plans = planColumns(layout, file, root, options);
  const scanOf = async (byteStrings: boolean) => {
    const columns = plans.flatMap((plan) =>
      plan.parquetColumn && isTopLevelString(plan) === byteStrings ? [plan.parquetColumn] : [],
    );
    if (columns.length === 0) return undefined;
    return parquetScan({
      file: buffer,
      metadata,
      columns,
      compressors,
      parsers: byteStrings ? byteParsers : rawParsers,
      utf8: false,
    });
  };
  const skip = 'exclude' in selection ? selection.exclude : null;
  const keep = 'only' in selection ? selection.only : null;
  let cursor = 0;
  const groupRows = metadata.row_groups.map((group) => Number(group.num_rows));
  for (const [start, end] of batchRanges(groupRows, options.maxBatchRows)) {
    const rows = end - start;
    if (keep && (cursor >= keep.length || keep[cursor] >= end)) continue;
    // Positions of the rows kept, when some are left out.
    let positions: Int32Array | undefined;
    if (keep) {
      const first = cursor;
      while (cursor < keep.length && keep[cursor] < end) cursor++;
      positions = Int32Array.from(keep.slice(first, cursor), (position) => position - start);
    } else if (skip && cursor < skip.length && skip[cursor] < end) {
      positions = new Int32Array(rows);
      let n = 0;
      for (let r = 0; r < rows; r++) {
        if (cursor < skip.length && skip[cursor] === start + r) cursor++;
        else positions[n++] = r;
      }
      positions = positions.subarray(0, n);
    }
    const length = positions ? positions.length : rows;
    if (length === 0) continue;
    // Fresh scans per batch: a scan keeps the last range it read of each column.
    const [scan, byteScan] = await Promise.all([scanOf(false), scanOf(true)]);
    const raws = await Promise.all(
      plans.map((plan) => {
        if (!plan.parquetColumn) return undefined;
        const from = isTopLevelString(plan) ? byteScan : scan;
        return from?.readColumn({ column: plan.parquetColumn, rowStart: start, rowEnd: end });
      }),
    );
    const columns = plans.map(
      (plan, i): BatchColumn => ({
        name: plan.name,
        type: plan.type,
        raw: raws[i],
        convert: plan.convert ?? ((raw) => raw as DeltaValue),
        node: plan.node,
        constant: plan.constant ?? null,
      }),
    );
    yield { length, positions, columns };
  }
}

/**
 * The most rows decoded at once. Row groups hold anything from a few
 * thousand rows to millions (Spark aims at 128 MB); larger ones are read in
 * equal slices, so memory does not follow the writer's choice. Not smaller:
 * a slice decodes every page it touches, and writers with one page per
 * column chunk would have it decoded once per slice.
 */
export const MAX_BATCH_ROWS = 131_072;

/**
 * [start, end) row ranges covering the row groups, none larger than `maxRows` nor across a group.
 *
 * @example
 * batchRanges([300_000, 10], 131_072) // [[0, 100000], [100000, 200000], [200000, 300000], [300000, 300010]]
 */
export function batchRanges(groupRows: number[], maxRows = MAX_BATCH_ROWS): [number, number][] {
  const ranges: [number, number][] = [];
  let groupStart = 0;
  for (const rows of groupRows) {
    const slices = Math.max(1, Math.ceil(rows / maxRows));
    const size = Math.ceil(rows / slices);
    for (let start = 0; start < rows; start += size) {
      ranges.push([groupStart + start, groupStart + Math.min(rows, start + size)]);
    }
    groupStart += rows;
  }
  return ranges;
}

function isTopLevelString(plan: ColumnPlan): boolean {
  return plan.type.type === 'string';
}

function planColumns(
  layout: TableLayout,
  file: DataFile,
  root: ReturnType<typeof schemaTree>,
  options: ReadFileOptions,
): ColumnPlan[] {
  const partitions = new Set(layout.partitionColumns);
  const plans: ColumnPlan[] = [];
  for (const field of layout.schema.fields) {
    if (partitions.has(field.name)) {
      const text = file.partitionValues[physicalName(field, layout.columnMapping)];
      plans.push({
        name: field.name,
        type: field.type,
        constant: parsePartitionValue(field.type, text, layout.partitionTimeZone),
      });
      continue;
    }
    const child = findParquetChild(root, field, layout.columnMapping);
    // A column missing from an older file (added later by schema evolution) reads as null.
    plans.push(
      child
        ? {
            name: field.name,
            type: field.type,
            parquetColumn: child.element.name,
            node: child,
            convert: converterFor(field.type, child, layout.columnMapping),
          }
        : { name: field.name, type: field.type, constant: null },
    );
  }
  for (const extra of options.extraColumns ?? []) {
    const child = root.children.find((c) => c.element.name === extra.name);
    plans.push(
      child
        ? {
            name: extra.name,
            type: extra.type,
            parquetColumn: extra.name,
            node: child,
            convert: converterFor(extra.type, child, 'none'),
          }
        : { name: extra.name, type: extra.type, constant: null },
    );
  }
  for (const { name, type, value } of options.constants ?? []) plans.push({ name, type, constant: value });
  return plans;
}
