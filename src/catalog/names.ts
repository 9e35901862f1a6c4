import { invalidParameter } from '../errors.js';

/**
 * Unity Catalog names: case-insensitive (stored lower-case), at most 255
 * characters, and never containing a period, a space, a forward slash or a
 * control character. Three-part names join catalog, schema and table with
 * periods, so the parts themselves cannot contain one.
 */
const MAX_NAME_LENGTH = 255;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what UC forbids.
const FORBIDDEN = /[.\s/\u0000-\u001f\u007f]/;

export type NameKind = 'catalog' | 'schema' | 'table' | 'external location';

/**
 * Validates one name part and returns it lower-cased.
 * @example
 * validateName('Sales', 'catalog') // 'sales'
 */
export function validateName(value: unknown, kind: NameKind, field = 'name'): string {
  if (typeof value !== 'string' || value === '') {
    throw invalidParameter(`Field '${field}' is required: the ${kind} name.`);
  }
  if (value.length > MAX_NAME_LENGTH) {
    throw invalidParameter(
      `The ${kind} name is ${value.length} characters long; the limit is ${MAX_NAME_LENGTH}.`,
    );
  }
  if (FORBIDDEN.test(value)) {
    throw invalidParameter(
      `Invalid ${kind} name ${JSON.stringify(value)}: names cannot contain a period, space, forward slash or control character.`,
    );
  }
  return value.toLowerCase();
}

export interface SchemaName {
  catalog: string;
  schema: string;
}

export interface TableName extends SchemaName {
  table: string;
}

/** Parses `catalog.schema`. */
export function parseSchemaFullName(fullName: string): SchemaName {
  const parts = fullName.split('.');
  if (parts.length !== 2) {
    throw invalidParameter(`Schema full name ${JSON.stringify(fullName)} must be <catalog>.<schema>.`);
  }
  return { catalog: validateName(parts[0], 'catalog'), schema: validateName(parts[1], 'schema') };
}

/** Parses `catalog.schema.table`. */
export function parseTableFullName(fullName: string): TableName {
  const parts = fullName.split('.');
  if (parts.length !== 3) {
    throw invalidParameter(`Table full name ${JSON.stringify(fullName)} must be <catalog>.<schema>.<table>.`);
  }
  return {
    catalog: validateName(parts[0], 'catalog'),
    schema: validateName(parts[1], 'schema'),
    table: validateName(parts[2], 'table'),
  };
}
