import { type DeltaType, openDeltaTable, typeName } from '../delta/index.js';
import { invalidParameter, isPierError } from '../errors.js';
import { fileUrl, localPath } from './storage-paths.js';
import type { ColumnInfo } from './store.js';

/** Unity Catalog's `type_name` for a Delta type. */
const TYPE_NAMES: Record<string, string> = {
  string: 'STRING',
  long: 'LONG',
  integer: 'INT',
  short: 'SHORT',
  byte: 'BYTE',
  float: 'FLOAT',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  binary: 'BINARY',
  date: 'DATE',
  timestamp: 'TIMESTAMP',
  timestamp_ntz: 'TIMESTAMP_NTZ',
  decimal: 'DECIMAL',
  struct: 'STRUCT',
  array: 'ARRAY',
  map: 'MAP',
};

/** What registering a Delta table reads from its log. */
export interface DeltaTableDescription {
  version: number;
  columns: ColumnInfo[];
  partitionColumns: string[];
}

/**
 * Checks that a storage location is one this host can read (an absolute
 * local path or a `file://` URI) and returns it normalised (`..` folded, no
 * trailing slash), so the stored location names the directory that was
 * checked. Whether the caller may use it is `authorizeStorageLocation`'s to
 * decide.
 */
export function validateStorageLocation(value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw invalidParameter(
      `Field 'storage_location' is required: the Delta table's directory (a local path or file:// URI).`,
    );
  }
  const path = localPath(value, 'storage_location');
  return value.startsWith('file:') ? fileUrl(path) : path;
}

/**
 * Reads the Delta table at `path` (the resolved `location`, which messages
 * name) for its latest schema and turns each top-level field into a
 * Unity Catalog ColumnInfo (type_json is the field exactly as the log has it).
 *
 * @example
 * const { columns } = await describeDeltaTable('file:///lake/daily_revenue', '/lake/daily_revenue');
 * columns[0]; // { name: 'region', type_name: 'STRING', type_text: 'string', position: 0, … }
 */
export async function describeDeltaTable(location: string, path = location): Promise<DeltaTableDescription> {
  let snapshot: Awaited<ReturnType<typeof openDeltaTable>>;
  try {
    snapshot = await openDeltaTable(path);
  } catch (error) {
    if (isPierError(error) && error.kind !== 'INTERNAL_ERROR') {
      throw invalidParameter(`Cannot register the Delta table at '${location}': ${error.message}`);
    }
    throw error;
  }
  const rawFields = (JSON.parse(snapshot.metadata.schemaString) as { fields: Record<string, unknown>[] })
    .fields;
  const partitionColumns = snapshot.partitionColumns;
  const columns = snapshot.schema.fields.map((field, position): ColumnInfo => {
    const column: ColumnInfo = {
      name: field.name,
      type_name: TYPE_NAMES[field.type.type] ?? 'USER_DEFINED_TYPE',
      type_text: typeName(field.type),
      type_json: JSON.stringify(rawFields[position]),
      position,
      nullable: field.nullable,
    };
    addPrecision(column, field.type);
    const partitionIndex = partitionColumns.indexOf(field.name);
    if (partitionIndex >= 0) column.partition_index = partitionIndex;
    const comment = field.metadata.comment;
    if (typeof comment === 'string') column.comment = comment;
    return column;
  });
  return { version: snapshot.version, columns, partitionColumns };
}

function addPrecision(column: ColumnInfo, type: DeltaType): void {
  if (type.type !== 'decimal') return;
  column.type_precision = type.precision;
  column.type_scale = type.scale;
}
