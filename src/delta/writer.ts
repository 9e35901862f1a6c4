import { randomUUID } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SchemaElement } from 'hyparquet';
import { type ColumnSource, parquetWriteFile } from 'hyparquet-writer';
import { PierError } from '../errors.js';
import type { AddCDCFile, AddFile, Metadata, Protocol, RemoveFile } from './actions.js';
import { versionFileName } from './log.js';
import { type DeltaType, type StructType, serializeSchema } from './schema.js';
import { openDeltaTable } from './table.js';
import { type DeltaRow, type DeltaValue, parseDate, parseDecimal, parseTimestamp } from './values.js';

/**
 * A small Delta writer for demo tables and benchmarks: unpartitioned tables
 * of primitive columns, protocol 1/4 with the Change Data Feed on. It
 * creates a table, appends rows, and applies upserts/deletes by key by
 * rewriting the affected files and writing `_change_data` files — valid
 * Delta that Spark reads. Commits are put-if-absent (`wx`), so two writers
 * never both win a version.
 */

export interface CreateTableOptions {
  /** Extra table properties; `delta.enableChangeDataFeed` is always `true`. */
  configuration?: Record<string, string>;
  name?: string;
  description?: string;
}

export interface WriteOptions {
  /** Rows per parquet file (default 1,000,000). */
  rowsPerFile?: number;
  /** Rows per row group (default 100,000). */
  rowGroupSize?: number;
}

/** Upserts and deletes by primary key. */
export interface MergeChanges {
  key: string[];
  /** Rows to insert, or to replace the row with the same key. */
  upserts: DeltaRow[];
  /** Key values of rows to delete. */
  deletes: DeltaRow[];
}

const ENGINE_INFO = 'Pier Delta writer';

/**
 * Creates an empty Delta table (version 0).
 *
 * @example
 * await createTable('/lake/t', { type: 'struct', fields: [{ name: 'id', type: { type: 'long' }, nullable: false, metadata: {} }] });
 */
export async function createTable(
  location: string,
  schema: StructType,
  options: CreateTableOptions = {},
): Promise<number> {
  for (const field of schema.fields) elementFor(field.name, field.type, field.nullable);
  await mkdir(join(location, '_delta_log'), { recursive: true });
  const protocol: Protocol = { minReaderVersion: 1, minWriterVersion: 4 };
  const metaData: Metadata = {
    id: randomUUID(),
    name: options.name,
    description: options.description,
    format: { provider: 'parquet', options: {} },
    schemaString: serializeSchema(schema),
    partitionColumns: [],
    configuration: { ...options.configuration, 'delta.enableChangeDataFeed': 'true' },
    createdTime: Date.now(),
  };
  await commit(location, 0, 'CREATE TABLE', [{ protocol }, { metaData }]);
  return 0;
}

/** Appends rows as new data files; returns the new version. */
export async function appendRows(
  location: string,
  rows: DeltaRow[],
  options: WriteOptions = {},
): Promise<number> {
  const snapshot = await openDeltaTable(location);
  const adds = await writeDataFiles(location, snapshot.schema, rows, options);
  const version = snapshot.version + 1;
  await commit(
    location,
    version,
    'WRITE',
    adds.map((add) => ({ add })),
    { mode: 'Append' },
  );
  return version;
}

/**
 * Applies upserts and deletes by key in one commit: affected files are
 * rewritten, and a change data file records `update_preimage`,
 * `update_postimage`, `delete` and `insert` rows. Returns the new version.
 */
export async function mergeRows(
  location: string,
  changes: MergeChanges,
  options: WriteOptions = {},
): Promise<number> {
  const snapshot = await openDeltaTable(location);
  const keyOf = (row: DeltaRow) => JSON.stringify(changes.key.map((k) => String(row[k])));
  const upserts = new Map(changes.upserts.map((row) => [keyOf(row), row]));
  const deletes = new Set(changes.deletes.map(keyOf));
  const matched = new Set<string>();
  const removes: RemoveFile[] = [];
  const kept: DeltaRow[] = [];
  const changeRows: DeltaRow[] = [];
  for (const file of snapshot.files) {
    const fileRows: DeltaRow[] = [];
    for await (const batch of snapshot.scanFile(file)) fileRows.push(...batch);
    const touched = fileRows.some((row) => upserts.has(keyOf(row)) || deletes.has(keyOf(row)));
    if (!touched) continue;
    removes.push({
      path: file.path,
      deletionTimestamp: Date.now(),
      dataChange: true,
      partitionValues: {},
      size: file.size,
    });
    for (const row of fileRows) {
      const key = keyOf(row);
      if (deletes.has(key)) {
        changeRows.push({ ...row, _change_type: 'delete' });
      } else if (upserts.has(key)) {
        matched.add(key);
        const next = upserts.get(key)!;
        changeRows.push(
          { ...row, _change_type: 'update_preimage' },
          { ...next, _change_type: 'update_postimage' },
        );
        kept.push(next);
      } else {
        kept.push(row);
      }
    }
  }
  for (const [key, row] of upserts) {
    if (matched.has(key)) continue;
    changeRows.push({ ...row, _change_type: 'insert' });
    kept.push(row);
  }
  const adds = await writeDataFiles(location, snapshot.schema, kept, options);
  const cdcSchema: StructType = {
    type: 'struct',
    fields: [
      ...snapshot.schema.fields,
      { name: '_change_type', type: { type: 'string' }, nullable: false, metadata: {} },
    ],
  };
  const cdc = changeRows.length > 0 ? [await writeChangeDataFile(location, cdcSchema, changeRows)] : [];
  const version = snapshot.version + 1;
  await commit(
    location,
    version,
    'MERGE',
    [
      ...removes.map((remove) => ({ remove })),
      ...adds.map((add) => ({ add })),
      ...cdc.map((file) => ({ cdc: file })),
    ],
    { matchedPredicates: '[{"actionType":"update"},{"actionType":"delete"}]' },
  );
  return version;
}

async function commit(
  location: string,
  version: number,
  operation: string,
  actions: object[],
  operationParameters: Record<string, string> = {},
): Promise<void> {
  const commitInfo = { timestamp: Date.now(), operation, operationParameters, engineInfo: ENGINE_INFO };
  const lines = [{ commitInfo }, ...actions].map((action) => JSON.stringify(action)).join('\n');
  try {
    await writeFile(join(location, '_delta_log', `${versionFileName(version)}.json`), `${lines}\n`, {
      flag: 'wx',
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new PierError(
        'INVALID_STATE',
        `Another writer committed version ${version} of ${location} first; retry.`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}

async function writeDataFiles(
  location: string,
  schema: StructType,
  rows: DeltaRow[],
  options: WriteOptions,
): Promise<AddFile[]> {
  const rowsPerFile = options.rowsPerFile ?? 1_000_000;
  const adds: AddFile[] = [];
  for (let start = 0; start < rows.length; start += rowsPerFile) {
    const chunk = rows.slice(start, start + rowsPerFile);
    const path = `part-${String(adds.length).padStart(5, '0')}-${randomUUID()}-c000.snappy.parquet`;
    const size = await writeParquet(join(location, path), schema, chunk, options.rowGroupSize);
    adds.push({
      path,
      partitionValues: {},
      size,
      modificationTime: Date.now(),
      dataChange: true,
      stats: statisticsJson(statistics(schema, chunk)),
    });
  }
  return adds;
}

async function writeChangeDataFile(
  location: string,
  schema: StructType,
  rows: DeltaRow[],
): Promise<AddCDCFile> {
  await mkdir(join(location, '_change_data'), { recursive: true });
  const path = `_change_data/cdc-00000-${randomUUID()}.c000.snappy.parquet`;
  const size = await writeParquet(join(location, path), schema, rows);
  return { path, partitionValues: {}, size, dataChange: false };
}

/** Writes rows as one parquet file; returns its size in bytes. */
async function writeParquet(filename: string, schema: StructType, rows: DeltaRow[], rowGroupSize = 100_000) {
  const elements: SchemaElement[] = [{ name: 'spark_schema', num_children: schema.fields.length }];
  const columnData: ColumnSource[] = [];
  for (const field of schema.fields) {
    const element = elementFor(field.name, field.type, field.nullable);
    elements.push(element);
    const toPhysical = physicalValue(field.type);
    const data = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) data[i] = toPhysical(rows[i][field.name] ?? null);
    columnData.push({ name: field.name, data, nullable: field.nullable });
  }
  parquetWriteFile({
    filename,
    columnData,
    schema: elements,
    rowGroupSize,
    kvMetadata: [{ key: 'org.apache.spark.sql.parquet.row.metadata', value: serializeSchema(schema) }],
  });
  return (await stat(filename)).size;
}

function elementFor(name: string, type: DeltaType, nullable: boolean): SchemaElement {
  const repetition_type = nullable ? 'OPTIONAL' : 'REQUIRED';
  switch (type.type) {
    case 'long':
      return { name, repetition_type, type: 'INT64' };
    case 'integer':
      return { name, repetition_type, type: 'INT32' };
    case 'short':
      return { name, repetition_type, type: 'INT32', converted_type: 'INT_16' };
    case 'byte':
      return { name, repetition_type, type: 'INT32', converted_type: 'INT_8' };
    case 'double':
      return { name, repetition_type, type: 'DOUBLE' };
    case 'float':
      return { name, repetition_type, type: 'FLOAT' };
    case 'boolean':
      return { name, repetition_type, type: 'BOOLEAN' };
    case 'string':
      return { name, repetition_type, type: 'BYTE_ARRAY', converted_type: 'UTF8' };
    case 'binary':
      return { name, repetition_type, type: 'BYTE_ARRAY' };
    case 'date':
      return { name, repetition_type, type: 'INT32', converted_type: 'DATE' };
    case 'timestamp':
    case 'timestamp_ntz':
      return {
        name,
        repetition_type,
        type: 'INT64',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: type.type === 'timestamp', unit: 'MICROS' },
      };
    case 'decimal':
      if (type.precision > 18) {
        // Wider decimals: 16 bytes of big-endian two's complement, enough for precision 38.
        return {
          name,
          repetition_type,
          type: 'FIXED_LEN_BYTE_ARRAY',
          type_length: 16,
          converted_type: 'DECIMAL',
          precision: type.precision,
          scale: type.scale,
        };
      }
      return {
        name,
        repetition_type,
        type: 'INT64',
        converted_type: 'DECIMAL',
        precision: type.precision,
        scale: type.scale,
      };
  }
  throw new PierError(
    'NOT_IMPLEMENTED',
    `Pier's Delta writer cannot write column '${name}' of type ${JSON.stringify(type)}.`,
  );
}

function physicalValue(type: DeltaType): (value: DeltaValue) => unknown {
  switch (type.type) {
    case 'long':
      return (v) => (v === null ? null : BigInt(v as bigint));
    case 'date':
      return (v) => (v === null ? null : parseDate(v as string));
    case 'timestamp':
    case 'timestamp_ntz':
      return (v) => (v === null ? null : parseTimestamp(v as string));
    case 'decimal':
      return (v) => (v === null ? null : parseDecimal(String(v), type.scale));
    default:
      return (v) => v;
  }
}

/** Per-file statistics ("Per-file Statistics"): numRecords, nullCount and min/max of orderable columns. */
function statistics(schema: StructType, rows: DeltaRow[]) {
  const minValues: Record<string, unknown> = {};
  const maxValues: Record<string, unknown> = {};
  const nullCount: Record<string, number> = {};
  for (const field of schema.fields) {
    let nulls = 0;
    let min: DeltaValue = null;
    let max: DeltaValue = null;
    const orderable = ['long', 'integer', 'short', 'byte', 'double', 'float', 'string', 'date'].includes(
      field.type.type,
    );
    for (const row of rows) {
      const value = row[field.name] ?? null;
      if (value === null) {
        nulls += 1;
        continue;
      }
      if (!orderable) continue;
      if (min === null || value < min) min = value;
      if (max === null || value > max) max = value;
    }
    nullCount[field.name] = nulls;
    if (min !== null) minValues[field.name] = min;
    if (max !== null) maxValues[field.name] = max;
  }
  return { numRecords: rows.length, minValues, maxValues, nullCount };
}

/**
 * The `stats` JSON of an `add` action. A long is written as its exact digits:
 * through a JS number, 2^53 + 1 would become 2^53 and a reader skipping files
 * by their max would skip the file that holds it.
 */
function statisticsJson(stats: ReturnType<typeof statistics>): string {
  const values = (record: Record<string, unknown>) =>
    `{${Object.entries(record)
      .map(
        ([name, value]) =>
          `${JSON.stringify(name)}:${typeof value === 'bigint' ? String(value) : JSON.stringify(value)}`,
      )
      .join(',')}}`;
  return `{"numRecords":${stats.numRecords},"minValues":${values(stats.minValues)},"maxValues":${values(stats.maxValues)},"nullCount":${values(stats.nullCount)}}`;
}
