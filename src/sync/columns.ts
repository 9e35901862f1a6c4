import type { DeltaType, StructField, StructType } from '../delta/index.js';
import { PierError } from '../errors.js';

/**
 * A synced table's Postgres columns, derived from the source's Delta schema
 * as Lakebase maps them: one column per top-level field, same name, nested
 * types as JSONB.
 */
export interface TargetColumn {
  name: string;
  /** The Delta field the values come from. */
  field: StructField;
  /** The column's Postgres type, e.g. `NUMERIC(38,18)`. */
  pgType: string;
  primaryKey: boolean;
}

/** What a synced table needs to know to lay out its Postgres table. */
export interface TargetLayout {
  columns: TargetColumn[];
  /** Primary key columns, in the order the user gave them. */
  primaryKey: TargetColumn[];
  /** With a timeseries key, the row with the latest value wins among rows of one key. */
  timeseriesKey?: TargetColumn;
}

/**
 * The Postgres type a Delta type syncs to.
 *
 * @example
 * postgresType({ type: 'decimal', precision: 38, scale: 18 }) // 'NUMERIC(38,18)'
 */
export function postgresType(type: DeltaType): string {
  switch (type.type) {
    case 'long':
      return 'BIGINT';
    case 'integer':
      return 'INTEGER';
    case 'short':
    case 'byte':
      return 'SMALLINT';
    case 'boolean':
      return 'BOOLEAN';
    case 'date':
      return 'DATE';
    case 'decimal':
      return `NUMERIC(${type.precision},${type.scale})`;
    case 'double':
      return 'DOUBLE PRECISION';
    case 'float':
      return 'REAL';
    case 'string':
      return 'TEXT';
    case 'binary':
      return 'BYTEA';
    case 'timestamp':
      return 'TIMESTAMPTZ';
    case 'timestamp_ntz':
      return 'TIMESTAMP';
    case 'struct':
    case 'array':
    case 'map':
      return 'JSONB';
  }
}

/** Types Lakebase refuses to sync, by their name in a Delta `schemaString`. */
const UNSYNCABLE = /"type"\s*:\s*"(variant|geography(\([^"]*\))?|geometry(\([^"]*\))?)"/i;

/**
 * Refuses a source whose schema has a type synced tables cannot carry,
 * before the Delta reader is asked to parse it (it would only say the type
 * is unsupported, not what to do).
 */
export function assertSyncableSchema(schemaString: string, source: string): void {
  const match = UNSYNCABLE.exec(schemaString);
  if (match) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `Source table ${source} has a ${match[1].toUpperCase()} column, which synced tables cannot carry. Sync a view or a copy of the table without it, or cast it to STRING.`,
    );
  }
}

/**
 * Lays out the target table: every source column, the primary key checked
 * against the source's columns.
 *
 * @example
 * targetLayout(snapshot.schema, { primaryKey: ['id'] }).columns.map((c) => c.pgType)
 */
export function targetLayout(
  schema: StructType,
  options: { primaryKey: string[]; timeseriesKey?: string; source?: string },
): TargetLayout {
  const source = options.source ?? 'the source table';
  if (options.primaryKey.length === 0) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      'A synced table needs a primary key: set spec.primary_key_columns to the column(s) that identify a row.',
    );
  }
  const byName = new Map(schema.fields.map((field) => [field.name.toLowerCase(), field]));
  const find = (name: string, role: string): StructField => {
    const field = byName.get(name.toLowerCase());
    if (!field) {
      throw new PierError(
        'INVALID_PARAMETER_VALUE',
        `${role} column '${name}' is not a column of ${source}. Its columns are: ${schema.fields.map((f) => f.name).join(', ')}.`,
      );
    }
    return field;
  };
  const keyFields = options.primaryKey.map((name) => find(name, 'Primary key'));
  if (new Set(keyFields).size !== keyFields.length) {
    throw new PierError('INVALID_PARAMETER_VALUE', 'spec.primary_key_columns names a column twice.');
  }
  for (const field of keyFields) {
    if (postgresType(field.type) === 'JSONB') {
      throw new PierError(
        'INVALID_PARAMETER_VALUE',
        `Primary key column '${field.name}' is a ${field.type.type}; a key must be a scalar column.`,
      );
    }
  }
  const timeseriesField = options.timeseriesKey ? find(options.timeseriesKey, 'Timeseries key') : undefined;
  const columns = schema.fields.map(
    (field): TargetColumn => ({
      name: field.name,
      field,
      pgType: postgresType(field.type),
      primaryKey: keyFields.includes(field),
    }),
  );
  const column = (field: StructField) => columns[schema.fields.indexOf(field)];
  return {
    columns,
    primaryKey: keyFields.map(column),
    ...(timeseriesField ? { timeseriesKey: column(timeseriesField) } : {}),
  };
}
