import { type DeltaRow, type DeltaType, type DeltaValue, toSparkJson } from '../delta/index.js';
import { PierError } from '../errors.js';
import type { TargetColumn } from './columns.js';

/**
 * Postgres COPY text format ("COPY … FROM STDIN", tab-separated, `\N` for
 * null), written from Delta values without ever passing a 64-bit integer or a
 * decimal through a JS number: the reader hands those over as bigint and
 * exact strings, and they are printed as they are.
 */
export type CopyEncoder = (row: DeltaRow) => string;

const NULL = '\\N';
/** Characters COPY text gives a meaning to; everything else passes as is. */
const SPECIAL = /[\\\n\r\t\0]/;

/** A text field, with COPY's own escapes for backslash, newline, carriage return and tab. */
export function copyText(text: string, column: string): string {
  if (!SPECIAL.test(text)) return text;
  if (text.includes('\0')) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `Column '${column}' has a value with a NUL character (\\u0000), which Postgres text cannot hold. Remove it in the source (e.g. replace(col, char(0), '')).`,
    );
  }
  let out = '';
  for (const char of text) {
    if (char === '\\') out += '\\\\';
    else if (char === '\n') out += '\\n';
    else if (char === '\r') out += '\\r';
    else if (char === '\t') out += '\\t';
    else out += char;
  }
  return out;
}

/** A double or float as Postgres reads it back to the same value: NaN, ±Infinity and -0 included. */
function copyFloat(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return 'Infinity';
  if (value === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (Object.is(value, -0)) return '-0';
  return String(value);
}

function valueEncoder(type: DeltaType, column: string): (value: DeltaValue) => string {
  switch (type.type) {
    case 'boolean':
      return (value) => (value ? 't' : 'f');
    case 'byte':
    case 'short':
    case 'integer':
    case 'long': // bigint: exact
    case 'decimal': // a string with its scale: exact
    case 'date':
    case 'timestamp':
    case 'timestamp_ntz':
      return (value) => String(value);
    case 'float':
    case 'double':
      return (value) => copyFloat(value as number);
    case 'string':
      return (value) => copyText(value as string, column);
    case 'binary':
      // bytea hex input, its backslash escaped for COPY.
      return (value) => `\\\\x${Buffer.from(value as Uint8Array).toString('hex')}`;
    case 'struct':
    case 'array':
    case 'map':
      return (value) => copyText(toSparkJson(type, value), column);
  }
}

/**
 * Builds the encoder of one row for the given columns, in their order.
 *
 * @example
 * const encode = copyEncoder(layout.columns);
 * stream.write(encode({ id: 1n, name: 'tab\there' })); // "1\ttab\\there\n"
 */
export function copyEncoder(columns: TargetColumn[]): CopyEncoder {
  const encoders = columns.map((column) => ({
    name: column.name,
    encode: valueEncoder(column.field.type, column.name),
  }));
  return (row) => {
    let line = '';
    for (let i = 0; i < encoders.length; i++) {
      const value = row[encoders[i].name];
      if (i > 0) line += '\t';
      line += value === null || value === undefined ? NULL : encoders[i].encode(value);
    }
    return `${line}\n`;
  };
}
