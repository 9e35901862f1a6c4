import { PierError } from '../errors.js';

/**
 * Delta column types ("Schema Serialization Format" in PROTOCOL.md). The
 * schema is Spark SQL's JSON schema, so the same parser reads the Spark
 * schema that Spark stores in a parquet file's key-value metadata.
 */
type PrimitiveTypeName =
  | 'string'
  | 'long'
  | 'integer'
  | 'short'
  | 'byte'
  | 'float'
  | 'double'
  | 'boolean'
  | 'binary'
  | 'date'
  | 'timestamp'
  | 'timestamp_ntz';

export type DeltaType =
  | { type: PrimitiveTypeName }
  | { type: 'decimal'; precision: number; scale: number }
  | StructType
  | { type: 'array'; elementType: DeltaType; containsNull: boolean }
  | { type: 'map'; keyType: DeltaType; valueType: DeltaType; valueContainsNull: boolean };

export interface StructType {
  type: 'struct';
  fields: StructField[];
}

export interface StructField {
  name: string;
  type: DeltaType;
  nullable: boolean;
  metadata: Record<string, unknown>;
}

export type ColumnMappingMode = 'none' | 'name' | 'id';

const PRIMITIVES = new Set<string>([
  'string',
  'long',
  'integer',
  'short',
  'byte',
  'float',
  'double',
  'boolean',
  'binary',
  'date',
  'timestamp',
  'timestamp_ntz',
]);

/** Parses a `metaData.schemaString`. */
export function parseSchema(schemaString: string): StructType {
  const type = parseType(JSON.parse(schemaString));
  if (type.type !== 'struct') {
    throw new PierError('INVALID_STATE', 'Delta table schema is not a struct.');
  }
  return type;
}

function parseType(json: unknown): DeltaType {
  if (typeof json === 'string') {
    if (PRIMITIVES.has(json)) return { type: json as PrimitiveTypeName };
    const decimal = /^decimal\((\d+),\s*(\d+)\)$/.exec(json);
    if (decimal) return { type: 'decimal', precision: Number(decimal[1]), scale: Number(decimal[2]) };
    if (json === 'decimal') return { type: 'decimal', precision: 10, scale: 0 };
    throw new PierError('NOT_IMPLEMENTED', `Delta column type '${json}' is not supported by Pier's reader.`);
  }
  const node = json as Record<string, unknown>;
  switch (node.type) {
    case 'struct':
      return {
        type: 'struct',
        fields: (node.fields as Record<string, unknown>[]).map((field) => ({
          name: field.name as string,
          type: parseType(field.type),
          nullable: field.nullable !== false,
          metadata: (field.metadata as Record<string, unknown>) ?? {},
        })),
      };
    case 'array':
      return {
        type: 'array',
        elementType: parseType(node.elementType),
        containsNull: node.containsNull !== false,
      };
    case 'map':
      return {
        type: 'map',
        keyType: parseType(node.keyType),
        valueType: parseType(node.valueType),
        valueContainsNull: node.valueContainsNull !== false,
      };
    default:
      throw new PierError(
        'NOT_IMPLEMENTED',
        `Delta column type '${JSON.stringify(node.type)}' is not supported.`,
      );
  }
}

/** The name a column has inside data files and in `partitionValues`. */
export function physicalName(field: StructField, mode: ColumnMappingMode): string {
  if (mode === 'none') return field.name;
  const name = field.metadata['delta.columnMapping.physicalName'];
  return typeof name === 'string' ? name : field.name;
}

/** The parquet field id of a column under column mapping mode `id`. */
export function fieldId(field: StructField): number | undefined {
  const id = field.metadata['delta.columnMapping.id'];
  return typeof id === 'number' ? id : undefined;
}

/** Renders a type the way Spark's `simpleString` does, for the CLI. */
export function typeName(type: DeltaType): string {
  switch (type.type) {
    case 'decimal':
      return `decimal(${type.precision},${type.scale})`;
    case 'struct':
      return `struct<${type.fields.map((f) => `${f.name}:${typeName(f.type)}`).join(',')}>`;
    case 'array':
      return `array<${typeName(type.elementType)}>`;
    case 'map':
      return `map<${typeName(type.keyType)},${typeName(type.valueType)}>`;
    case 'integer':
      return 'int';
    case 'long':
      return 'bigint';
    case 'short':
      return 'smallint';
    case 'byte':
      return 'tinyint';
    default:
      return type.type;
  }
}

/** The inverse of {@link parseSchema}: a `schemaString` in Delta's JSON form. */
export function serializeSchema(schema: StructType): string {
  return JSON.stringify(typeToJson(schema));
}

function typeToJson(type: DeltaType): unknown {
  switch (type.type) {
    case 'decimal':
      return `decimal(${type.precision},${type.scale})`;
    case 'struct':
      return {
        type: 'struct',
        fields: type.fields.map((f) => ({
          name: f.name,
          type: typeToJson(f.type),
          nullable: f.nullable,
          metadata: f.metadata,
        })),
      };
    case 'array':
      return { type: 'array', elementType: typeToJson(type.elementType), containsNull: type.containsNull };
    case 'map':
      return {
        type: 'map',
        keyType: typeToJson(type.keyType),
        valueType: typeToJson(type.valueType),
        valueContainsNull: type.valueContainsNull,
      };
    default:
      return type.type;
  }
}
