import { openDeltaTable, type StructType } from '../delta/index.js';
import { appendRows, createTable, mergeRows } from '../delta/writer.js';

/**
 * The demo lakehouse table `daily_revenue` (primary key: day, region), with
 * the Change Data Feed on, for trying synced tables without a Databricks
 * workspace.
 */

export const DAILY_REVENUE_SCHEMA: StructType = {
  type: 'struct',
  fields: [
    { name: 'day', type: { type: 'date' }, nullable: false, metadata: {} },
    { name: 'region', type: { type: 'string' }, nullable: false, metadata: {} },
    { name: 'orders', type: { type: 'long' }, nullable: true, metadata: {} },
    { name: 'revenue', type: { type: 'decimal', precision: 12, scale: 2 }, nullable: true, metadata: {} },
  ],
};

export const DAILY_REVENUE_KEY = ['day', 'region'];

const REGIONS = ['emea', 'amer', 'apac'];

/** Days since 2024-01-01 → `yyyy-MM-dd`. */
function day(offset: number): string {
  return new Date(Date.UTC(2024, 0, 1 + offset)).toISOString().slice(0, 10);
}

/** Deterministic figures, so the demo looks the same everywhere. */
function figures(dayOffset: number, regionIndex: number, bump = 0) {
  const orders = 40 + ((dayOffset * 7 + regionIndex * 13 + bump * 5) % 60);
  const cents = orders * (1999 + regionIndex * 250) + bump * 101;
  return {
    orders: BigInt(orders),
    revenue: `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`,
  };
}

/**
 * Writes `daily_revenue` into `dir` (which must not hold a table yet):
 * version 0 creates it, version 1 adds a week of rows for three regions.
 * Returns the latest version.
 *
 * @example
 * await createDemoTable(join(pierHome, 'lakehouse', 'daily_revenue'));
 */
export async function createDemoTable(dir: string): Promise<number> {
  await createTable(dir, DAILY_REVENUE_SCHEMA, {
    name: 'daily_revenue',
    description: 'Orders and revenue per day and region (Pier demo).',
  });
  const rows = [];
  for (let d = 0; d < 7; d++) {
    for (let r = 0; r < REGIONS.length; r++) rows.push({ day: day(d), region: REGIONS[r], ...figures(d, r) });
  }
  return appendRows(dir, rows);
}

/**
 * Commits one more version of `daily_revenue`: the next day's rows
 * (inserts), corrected figures for the latest day (updates) and the
 * removal of the oldest day's `apac` row (a delete). Returns the new version.
 */
export async function advanceDemoTable(dir: string): Promise<number> {
  const snapshot = await openDeltaTable(dir);
  let latest = '';
  let oldest = '9999-12-31';
  for await (const rows of snapshot.scan()) {
    for (const row of rows) {
      const value = row.day as string;
      if (value > latest) latest = value;
      if (value < oldest) oldest = value;
    }
  }
  const latestOffset = Math.round((Date.parse(latest) - Date.UTC(2024, 0, 1)) / 86_400_000);
  const upserts = [
    ...REGIONS.map((region, r) => ({ day: day(latestOffset + 1), region, ...figures(latestOffset + 1, r) })),
    ...REGIONS.slice(0, 2).map((region, r) => ({
      day: latest,
      region,
      ...figures(latestOffset, r, snapshot.version),
    })),
  ];
  return mergeRows(dir, { key: DAILY_REVENUE_KEY, upserts, deletes: [{ day: oldest, region: 'apac' }] });
}
