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

/** Rows to keep by physical position in the file: all but `exclude`, or only `only` (ascending). */
export type RowSelection = { exclude: number[] } | { only: number[] };

export interface ReadFileOptions {
  /** Defaults to excluding the file's deletion vector. */
  rows?: RowSelection;
  /** Columns read from the file that are not in the table schema (e.g. `_change_type`). */
  extraColumns?: { name: string; type: DeltaType }[];
  /** Fixed values added to every row (e.g. `_commit_version`). */
  constants?: DeltaRow;
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
  /** Parquet top-level column to read, or undefined for a constant. */
  parquetColumn?: string;
  convert?: Converter;
  constant?: DeltaValue;
}

/**
 * Streams the rows of one file as batches (one per row group).
 *
 * @example
 * for await (const rows of readDataFile(layout, add)) console.log(rows.length);
 */
export async function* readDataFile(
  layout: TableLayout,
  file: DataFile,
  options: ReadFileOptions = {},
): AsyncGenerator<DeltaRow[]> {
  const selection = options.rows ?? { exclude: await deletedRows(layout.storage, file.deletionVector) };
  if ('only' in selection && selection.only.length === 0) return;
  const buffer = await layout.storage.openParquet(dataFilePath(file.path));
  const metadata = await readFooter(buffer);
  const root = schemaTree(metadata);
  const plans = planColumns(layout, file, root, options);
  const columns = plans.flatMap((plan) => (plan.parquetColumn ? [plan.parquetColumn] : []));
  const scan = await parquetScan({
    file: buffer,
    metadata,
    columns,
    compressors,
    parsers: rawParsers,
    utf8: false,
  });
  const skip = 'exclude' in selection ? selection.exclude : null;
  const keep = 'only' in selection ? selection.only : null;
  let cursor = 0;
  let groupStart = 0;
  for (const group of metadata.row_groups) {
    const groupRows = Number(group.num_rows);
    const groupEnd = groupStart + groupRows;
    if (keep && (cursor >= keep.length || keep[cursor] >= groupEnd)) {
      groupStart = groupEnd;
      continue;
    }
    const data = await Promise.all(
      plans.map((plan) =>
        plan.parquetColumn
          ? scan.readColumn({ column: plan.parquetColumn, rowStart: groupStart, rowEnd: groupEnd })
          : Promise.resolve(null),
      ),
    );
    const values = plans.map((plan, i) => {
      const raw = data[i];
      if (raw === null || !plan.convert) return null;
      const out = new Array<DeltaValue>(groupRows);
      const convert = plan.convert;
      for (let r = 0; r < groupRows; r++) out[r] = convert(raw[r]);
      return out;
    });
    const rows: DeltaRow[] = [];
    const emit = (r: number) => {
      const row: DeltaRow = {};
      for (let c = 0; c < plans.length; c++) {
        const column = values[c];
        row[plans[c].name] = column === null ? (plans[c].constant ?? null) : column[r];
      }
      rows.push(row);
    };
    if (keep) {
      while (cursor < keep.length && keep[cursor] < groupEnd) emit(keep[cursor++] - groupStart);
    } else {
      for (let r = 0; r < groupRows; r++) {
        if (skip && cursor < skip.length && skip[cursor] === groupStart + r) {
          cursor++;
          continue;
        }
        emit(r);
      }
    }
    groupStart = groupEnd;
    if (rows.length > 0) yield rows;
  }
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
            parquetColumn: child.element.name,
            convert: converterFor(field.type, child, layout.columnMapping),
          }
        : { name: field.name, constant: null },
    );
  }
  for (const extra of options.extraColumns ?? []) {
    const child = root.children.find((c) => c.element.name === extra.name);
    plans.push(
      child
        ? { name: extra.name, parquetColumn: extra.name, convert: converterFor(extra.type, child, 'none') }
        : { name: extra.name, constant: null },
    );
  }
  for (const [name, value] of Object.entries(options.constants ?? {})) plans.push({ name, constant: value });
  return plans;
}
