import type { ControlContext } from '../control/context.js';
import { wholeNumberParam } from '../control/validate.js';
import {
  type DeltaSnapshot,
  type HistoryEntry,
  openDeltaTable,
  readHistory,
  storageFor,
  toSparkJson,
  typeName,
} from '../delta/index.js';
import { invalidParameter } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import type { TableRow } from './store.js';
import { getTable } from './tables.js';

/** The most rows a preview returns, and the most commits a history. */
const MAX_PREVIEW_ROWS = 100;
const MAX_HISTORY = 100;

/**
 * A stored Delta table the caller may read (the access of `GET
 * /unity-catalog/tables/{name}`); tables of database catalogs are Postgres
 * tables, read with psql or the live catalog instead.
 */
async function deltaTableFor(ctx: ControlContext, caller: IdentityRow, fullName: string): Promise<TableRow> {
  const { table } = await getTable(ctx, caller, fullName);
  if (!('storage_path' in table) || table.data_source_format !== 'DELTA') {
    throw invalidParameter(
      `Table '${fullName}' is not a Delta table: its history and rows are Postgres', read them with psql.`,
    );
  }
  return table;
}

function limitOf(raw: string | undefined, fallback: number, max: number): number {
  return wholeNumberParam(raw, 'limit', { min: 1, max, fallback });
}

/** The newest commits of a Delta table, newest first. */
export async function tableHistory(
  ctx: ControlContext,
  caller: IdentityRow,
  fullName: string,
  limit: string | undefined,
): Promise<HistoryEntry[]> {
  const table = await deltaTableFor(ctx, caller, fullName);
  return readHistory(storageFor(table.storage_path), limitOf(limit, 20, MAX_HISTORY));
}

/** The first rows of a Delta table's latest version; each value as display text (bigints stay exact). */
export async function tablePreview(
  ctx: ControlContext,
  caller: IdentityRow,
  fullName: string,
  limit: string | undefined,
): Promise<{ version: number; columns: { name: string; type: string }[]; rows: (string | null)[][] }> {
  const table = await deltaTableFor(ctx, caller, fullName);
  const snapshot: DeltaSnapshot = await openDeltaTable(table.storage_path);
  const fields = snapshot.schema.fields;
  const rows: (string | null)[][] = [];
  for await (const batch of snapshot.scan({ limit: limitOf(limit, 20, MAX_PREVIEW_ROWS) })) {
    for (const row of batch) {
      rows.push(
        fields.map((field) => {
          const value = row[field.name];
          if (value === null || value === undefined) return null;
          return typeof value === 'string' ? value : toSparkJson(field.type, value);
        }),
      );
    }
  }
  return {
    version: snapshot.version,
    columns: fields.map((field) => ({ name: field.name, type: typeName(field.type) })),
    rows,
  };
}
