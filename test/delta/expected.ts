/**
 * Expected results of the Delta conformance corpus
 * (test/fixtures/delta-corpus/SOURCES.md), and one canonical text form for
 * rows so that actual and expected compare as multisets.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parquetMetadataAsync } from 'hyparquet';
import {
  type DeltaRow,
  type DeltaType,
  type DeltaValue,
  parseSchema,
  type StructType,
  storageFor,
} from '../../src/delta/index.js';
import { readDataFile } from '../../src/delta/scan.js';
import { formatDecimal, formatTimestamp, parseDecimal, parseTimestamp } from '../../src/delta/values.js';

export const CORPUS = join(
  fileURLToPath(new URL('.', import.meta.url)),
  '../../../test/fixtures/delta-corpus',
);

export interface CorpusTable {
  table: string;
  table_root: string;
  expected_kind: 'spark-parquet-latest' | 'rule-in-upstream-code' | 'ascii-table-or-text' | 'must-fail';
}

export function corpusTables(): CorpusTable[] {
  return JSON.parse(readFileSync(join(CORPUS, 'manifest.json'), 'utf8'));
}

export function tableRoot(name: string): string {
  const table = corpusTables().find((t) => t.table === name);
  if (!table) throw new Error(`no corpus table ${name}`);
  return join(CORPUS, table.table_root);
}

/** Canonical text of a value of a Delta type: equal values, equal text. */
export function canonical(type: DeltaType, value: DeltaValue | undefined): string {
  if (value === null || value === undefined) return '∅';
  switch (type.type) {
    case 'float':
      return String(Math.fround(value as number));
    case 'double':
    case 'byte':
    case 'short':
    case 'integer':
      return String(Number(value));
    case 'long':
      return String(value);
    case 'binary':
      return Buffer.from(value as Uint8Array).toString('hex');
    case 'timestamp':
    case 'timestamp_ntz':
      return String(parseTimestamp(value as string));
    case 'struct':
      return `{${type.fields.map((f) => `${f.name}:${canonical(f.type, (value as Record<string, DeltaValue>)[f.name])}`).join(',')}}`;
    case 'array':
      return `[${(value as DeltaValue[]).map((v) => canonical(type.elementType, v)).join(',')}]`;
    case 'map':
      return `{${[...(value as Map<DeltaValue, DeltaValue>)]
        .map(([k, v]) => `${canonical(type.keyType, k)}=>${canonical(type.valueType, v)}`)
        .sort()
        .join(',')}}`;
    default:
      return JSON.stringify(value);
  }
}

/**
 * Canonical, sorted rows. `emptyStringIsNull` is for the ASCII tables, whose
 * printer shows null and '' alike.
 */
export function canonicalRows(
  schema: StructType,
  rows: DeltaRow[],
  columns?: string[],
  { emptyStringIsNull = false } = {},
): string[] {
  const fields = columns ? columns.map((name) => fieldOf(schema, name)) : schema.fields;
  const value = (row: DeltaRow, name: string) => (emptyStringIsNull && row[name] === '' ? null : row[name]);
  return rows
    .map((row) => fields.map((f) => `${f.name}=${canonical(f.type, value(row, f.name))}`).join(' | '))
    .sort();
}

function fieldOf(schema: StructType, name: string) {
  const field = schema.fields.find((f) => f.name === name);
  if (!field) throw new Error(`schema has no column ${name}: ${schema.fields.map((f) => f.name).join(', ')}`);
  return field;
}

export async function collect(batches: AsyncIterable<DeltaRow[]>): Promise<DeltaRow[]> {
  const rows: DeltaRow[] = [];
  for await (const batch of batches) rows.push(...batch);
  return rows;
}

/** Rows of the Spark-written `expected/` parquet dataset, typed by the Spark schema Spark stores in each file. */
export async function expectedParquet(table: string): Promise<{ schema: StructType; rows: DeltaRow[] }> {
  const dir = join(CORPUS, table, 'expected');
  const storage = storageFor(dir);
  const rows: DeltaRow[] = [];
  let schema: StructType | undefined;
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith('.parquet'))
    .sort()) {
    const file = await storage.openParquet(name);
    const metadata = await parquetMetadataAsync(file);
    const sparkSchema = metadata.key_value_metadata?.find(
      (kv) => kv.key === 'org.apache.spark.sql.parquet.row.metadata',
    );
    if (!sparkSchema?.value) throw new Error(`${name} has no Spark schema`);
    schema = parseSchema(sparkSchema.value);
    const layout = { storage, schema, partitionColumns: [], columnMapping: 'none' as const };
    rows.push(...(await collect(readDataFile(layout, { path: name, partitionValues: {} }))));
  }
  if (!schema) throw new Error(`no expected parquet for ${table}`);
  return { schema, rows };
}

/** A pretty-printed Arrow table from `_expected-extracted/`: header names and cell texts (empty cell = null). */
export function expectedAscii(file: string): { columns: string[]; rows: (string | null)[][] } {
  const lines = readFileSync(join(CORPUS, '_expected-extracted', file), 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('|'));
  const cells = (line: string) =>
    line
      .slice(1, -1)
      .split('|')
      .map((cell) => cell.trim());
  const [header, ...body] = lines;
  return {
    columns: cells(header),
    rows: body.map((line) => cells(line).map((cell) => (cell === '' ? null : cell))),
  };
}

/** Canonical rows of an ASCII expectation, cells parsed by the column types of `schema`. */
export function canonicalAscii(schema: StructType, file: string): { columns: string[]; rows: string[] } {
  const { columns, rows } = expectedAscii(file);
  const fields = columns.map((name) => fieldOf(schema, name));
  return {
    columns,
    rows: rows
      .map((cells) =>
        fields.map((f, i) => `${f.name}=${canonical(f.type, parseCell(f.type, cells[i]))}`).join(' | '),
      )
      .sort(),
  };
}

function parseCell(type: DeltaType, text: string | null): DeltaValue {
  if (text === null) return null;
  switch (type.type) {
    case 'long':
      return BigInt(text);
    case 'byte':
    case 'short':
    case 'integer':
    case 'float':
    case 'double':
      return Number(text);
    case 'boolean':
      return text === 'true';
    case 'decimal':
      return formatDecimal(parseDecimal(text, type.scale), type.scale);
    case 'timestamp':
      return formatTimestamp(parseTimestamp(text), true);
    case 'timestamp_ntz':
      return formatTimestamp(parseTimestamp(text), false);
    default:
      return text;
  }
}
