/**
 * Value-by-value comparison of a synced Postgres table with the Delta rows
 * it came from: both sides are turned into one canonical text per row
 * (exact: 64-bit integers and decimals as digits, timestamps to the
 * microsecond, floats by their bits), and the sorted lists must be equal.
 */
import pg from 'pg';
import type { DeltaRow, DeltaType } from '../../src/delta/index.js';
import { toSparkJson } from '../../src/delta/index.js';
import type { TargetLayout } from '../../src/sync/columns.js';
import { qualified, type SyncTarget } from '../../src/sync/target.js';
import { canonical } from '../delta/expected.js';

function nested(type: DeltaType): boolean {
  return type.type === 'struct' || type.type === 'array' || type.type === 'map';
}

/** JSON with sorted keys, so jsonb's key order does not matter. */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${stableJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

export function deltaCanonical(layout: TargetLayout, rows: DeltaRow[]): string[] {
  const keys = layout.primaryKey.map((c) => c.name);
  return rows
    .filter((row) => keys.every((key) => row[key] !== null && row[key] !== undefined))
    .map((row) =>
      layout.columns
        .map((column) => {
          const value = row[column.name] ?? null;
          const type = column.field.type;
          if (nested(type)) return value === null ? '∅' : stableJson(JSON.parse(toSparkJson(type, value)));
          return canonical(type, value);
        })
        .join(' | '),
    )
    .sort();
}

/** What Postgres holds, read back as text and canonicalised like the Delta side. */
export async function postgresCanonical(
  client: pg.ClientBase,
  target: SyncTarget,
  layout: TargetLayout,
): Promise<string[]> {
  const select = layout.columns.map((column) => {
    const name = pg.escapeIdentifier(column.name);
    switch (column.field.type.type) {
      case 'timestamp':
        return `to_char(${name} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
      case 'timestamp_ntz':
        return `to_char(${name}, 'YYYY-MM-DD"T"HH24:MI:SS.US')`;
      case 'binary':
        return `encode(${name}, 'hex')`;
      default:
        return `${name}::text`;
    }
  });
  const { rows } = await client.query<string[]>({
    text: `SELECT ${select.join(', ')} FROM ${qualified(target)}`,
    rowMode: 'array',
  });
  return rows
    .map((row) =>
      layout.columns
        .map((column, i) => {
          const text = row[i];
          const type = column.field.type;
          if (text === null) return '∅';
          if (nested(type)) return stableJson(JSON.parse(text));
          switch (type.type) {
            case 'long':
              return canonical(type, BigInt(text));
            case 'boolean':
              return canonical(type, text === 'true');
            case 'binary':
              return canonical(type, Buffer.from(text, 'hex'));
            case 'byte':
            case 'short':
            case 'integer':
            case 'float':
            case 'double':
              return canonical(type, Number(text));
            default:
              return canonical(type, text);
          }
        })
        .join(' | '),
    )
    .sort();
}
