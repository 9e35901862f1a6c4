import type { DeltaRow, StructType } from '../src/delta/index.js';
import { formatDate, formatDecimal, formatTimestampNumber } from '../src/delta/values.js';

/** The synced-table benchmarks' source: 8 columns (bigint key, int, string, double, timestamp, boolean, decimal, date). */
export const SCHEMA: StructType = {
  type: 'struct',
  fields: [
    { name: 'id', type: { type: 'long' }, nullable: false, metadata: {} },
    { name: 'qty', type: { type: 'integer' }, nullable: true, metadata: {} },
    { name: 'name', type: { type: 'string' }, nullable: true, metadata: {} },
    { name: 'price', type: { type: 'double' }, nullable: true, metadata: {} },
    { name: 'ts', type: { type: 'timestamp' }, nullable: true, metadata: {} },
    { name: 'flag', type: { type: 'boolean' }, nullable: true, metadata: {} },
    { name: 'amount', type: { type: 'decimal', precision: 12, scale: 2 }, nullable: true, metadata: {} },
    { name: 'day', type: { type: 'date' }, nullable: true, metadata: {} },
  ],
};

/** Row `i` of the source as of `version` (a later version changes every column but the key). */
export function row(i: number, version = 0): DeltaRow {
  return {
    id: BigInt(i),
    qty: (i * 7 + version) % 1000,
    name: `customer-${i % 50_000}`,
    price: (i % 10_000) * 0.25 + version,
    ts: formatTimestampNumber(1_700_000_000_000_000 + i * 1_000_003, true),
    flag: i % 3 === 0,
    amount: formatDecimal(BigInt((i * 37) % 10_000_000) + BigInt(version), 2),
    day: formatDate(19_000 + (i % 730)),
  };
}
