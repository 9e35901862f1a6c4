import type { FileMetaData, ParquetParsers, SchemaTree } from 'hyparquet';
import { parquetMetadataAsync, parquetSchema } from 'hyparquet';
import type { ColumnMappingMode, DeltaType, StructField } from './schema.js';
import { fieldId, physicalName } from './schema.js';
import { type DeltaValue, formatDate, formatDecimal, formatTimestamp } from './values.js';

/**
 * Parquet → Delta values. hyparquet decodes pages; these parsers keep what
 * its defaults would round (timestamps to microseconds as bigint, dates as
 * day numbers, decimals as unscaled integers), and converters built from the
 * Delta type and the file's own parquet schema turn them into the values
 * documented in values.ts. Type widening falls out of this: the physical
 * type in the file and the logical type in the table may differ.
 */

const utf8 = new TextDecoder();

export const rawParsers: Partial<ParquetParsers> = {
  timestampFromMilliseconds: (millis: bigint) => millis * 1000n,
  timestampFromMicroseconds: (micros: bigint) => micros,
  // INT96 and NANOS: floor to microseconds (bigint division truncates toward zero).
  timestampFromNanoseconds: (nanos: bigint) => (nanos >= 0n ? nanos / 1000n : -((-nanos + 999n) / 1000n)),
  dateFromDays: (days: number) => days,
  stringFromBytes: (bytes: Uint8Array) => bytes && utf8.decode(bytes),
};

/**
 * Reads a file's footer, with DECIMAL annotations removed so hyparquet hands
 * over unscaled integers (its own conversion goes through a double).
 */
export async function readFooter(file: Parameters<typeof parquetMetadataAsync>[0]): Promise<FileMetaData> {
  const metadata = await parquetMetadataAsync(file, { parsers: rawParsers });
  metadata.schema = metadata.schema.map((element) =>
    element.converted_type === 'DECIMAL'
      ? { ...element, converted_type: undefined, scale: element.scale ?? 0 }
      : element,
  );
  return metadata;
}

export function schemaTree(metadata: FileMetaData): SchemaTree {
  return parquetSchema(metadata);
}

/** Converts one raw value decoded by hyparquet. */
export type Converter = (raw: unknown) => DeltaValue;

/** The parquet child holding a Delta field, by field id (mode `id`) or physical name. */
export function findParquetChild(
  parent: SchemaTree,
  field: StructField,
  mode: ColumnMappingMode,
): SchemaTree | undefined {
  if (mode === 'id') {
    const id = fieldId(field);
    return parent.children.find((child) => child.element.field_id === id);
  }
  const name = physicalName(field, mode);
  return parent.children.find((child) => child.element.name === name);
}

/** Builds the converter for a Delta type stored as the parquet node `node`. */
export function converterFor(type: DeltaType, node: SchemaTree, mode: ColumnMappingMode): Converter {
  switch (type.type) {
    case 'string':
      return (raw) => (raw == null ? null : raw instanceof Uint8Array ? utf8.decode(raw) : String(raw));
    case 'boolean':
      return (raw) => (raw == null ? null : Boolean(raw));
    case 'byte':
    case 'short':
    case 'integer':
    case 'float':
    case 'double':
      return (raw) => (raw == null ? null : Number(raw));
    case 'long':
      return (raw) => (raw == null ? null : typeof raw === 'bigint' ? raw : BigInt(raw as number));
    case 'binary':
      return (raw) =>
        raw == null ? null : raw instanceof Uint8Array ? raw : new TextEncoder().encode(String(raw));
    case 'date':
      return (raw) => (raw == null ? null : formatDate(raw as number));
    case 'timestamp':
    case 'timestamp_ntz': {
      const utc = type.type === 'timestamp';
      // A bigint is microseconds; a number is a date widened to a timestamp.
      return (raw) =>
        raw == null
          ? null
          : typeof raw === 'bigint'
            ? formatTimestamp(raw, utc)
            : formatTimestamp(BigInt(raw as number) * 86_400_000_000n, utc);
    }
    case 'decimal': {
      const physicalScale = node.element.scale ?? 0;
      const factor = 10n ** BigInt(Math.max(0, type.scale - physicalScale));
      return (raw) => (raw == null ? null : formatDecimal(unscaledDecimal(raw) * factor, type.scale));
    }
    case 'struct': {
      const children = type.fields.map((field) => {
        const child = findParquetChild(node, field, mode);
        return {
          name: field.name,
          key: child?.element.name,
          convert: child ? converterFor(field.type, child, mode) : null,
        };
      });
      return (raw) => {
        if (raw == null) return null;
        const record = raw as Record<string, unknown>;
        const out: Record<string, DeltaValue> = {};
        for (const child of children) {
          out[child.name] =
            child.convert && child.key !== undefined ? child.convert(record[child.key]) : null;
        }
        return out;
      };
    }
    case 'array': {
      const convert = converterFor(type.elementType, listElement(node), mode);
      return (raw) => (raw == null ? null : (raw as unknown[]).map(convert));
    }
    case 'map': {
      const entry = node.children[0];
      const keyNode = entry?.children.find((c) => c.element.name === 'key') ?? entry?.children[0];
      const valueNode = entry?.children.find((c) => c.element.name === 'value') ?? entry?.children[1];
      const convertKey = mapKeyConverter(type.keyType, keyNode, mode);
      const convertValue = converterFor(type.valueType, valueNode, mode);
      return (raw) => {
        if (raw == null) return null;
        const out = new Map<DeltaValue, DeltaValue>();
        // hyparquet assembles maps into objects, so keys arrive as strings.
        for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
          out.set(convertKey(key), convertValue(value));
        }
        return out;
      };
    }
  }
}

/** The element node of a parquet LIST (three-level, or the legacy two-level form). */
function listElement(node: SchemaTree): SchemaTree {
  const repeated = node.children[0];
  if (repeated.children.length === 1) return repeated.children[0];
  return repeated;
}

function mapKeyConverter(type: DeltaType, node: SchemaTree, mode: ColumnMappingMode): Converter {
  const convert = converterFor(type, node, mode);
  switch (type.type) {
    case 'string':
      return convert;
    case 'long':
    case 'timestamp':
    case 'timestamp_ntz':
      return (key) => convert(/^-?\d+$/.test(key as string) ? BigInt(key as string) : key);
    case 'boolean':
      return (key) => key === 'true';
    default:
      return (key) => convert(Number(key));
  }
}

/** A decimal's unscaled integer from its raw parquet value (INT32, INT64 or big-endian two's complement bytes). */
export function unscaledDecimal(raw: unknown): bigint {
  if (typeof raw === 'bigint') return raw;
  if (typeof raw === 'number') return BigInt(raw);
  const bytes = raw as Uint8Array;
  if (bytes.length === 0) return 0n;
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  // Two's complement, big endian.
  if (bytes[0] & 0x80) value -= 1n << BigInt(bytes.length * 8);
  return value;
}
