import pg from 'pg';
import type { TargetLayout } from './columns.js';
import { SyncFailure } from './failure.js';
import { qualified, type SyncTarget } from './target.js';

/** A Postgres type as `format_type` spells it, for comparing with what the table has. */
function formatted(pgType: string): string {
  const numeric = /^NUMERIC\((\d+),(\d+)\)$/.exec(pgType);
  if (numeric) return `numeric(${numeric[1]},${numeric[2]})`;
  const names: Record<string, string> = {
    TIMESTAMPTZ: 'timestamp with time zone',
    TIMESTAMP: 'timestamp without time zone',
  };
  return names[pgType] ?? pgType.toLowerCase();
}

/**
 * Follows the source's schema: columns added to the source are added to the
 * Postgres table (nullable, so existing rows read NULL, as Spark reads them);
 * a column whose type changed or that the source dropped fails the table,
 * since its rows could no longer be kept exact — a full refresh rebuilds it.
 * Returns the columns added.
 */
export async function evolveTarget(
  client: pg.ClientBase,
  target: SyncTarget,
  layout: TargetLayout,
  sourceName: string,
): Promise<string[]> {
  const { rows } = await client.query<{ name: string; type: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_attribute a
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [qualified(target)],
  );
  const existing = new Map(rows.map((row) => [row.name, row.type]));
  const wanted = new Set(layout.columns.map((column) => column.name));
  const fail = (what: string) =>
    new SyncFailure(
      'SCHEMA_CHANGED',
      `The schema of ${sourceName} changed in a way a synced table cannot follow: ${what}. Run a full refresh (pier database sync-synced-table <name> --full-refresh) to rebuild the table, or recreate the synced table.`,
      true,
    );
  for (const column of layout.columns) {
    const type = existing.get(column.name);
    if (type !== undefined && type !== formatted(column.pgType)) {
      throw fail(`column '${column.name}' is now ${column.pgType}, the table has ${type}`);
    }
  }
  const dropped = [...existing.keys()].filter((name) => !wanted.has(name));
  if (dropped.length > 0)
    throw fail(
      `column${dropped.length > 1 ? 's' : ''} ${dropped.map((n) => `'${n}'`).join(', ')} left the source`,
    );
  const added = layout.columns.filter((column) => !existing.has(column.name));
  if (added.length > 0) {
    await client.query(
      `ALTER TABLE ${qualified(target)} ${added.map((column) => `ADD COLUMN ${pg.escapeIdentifier(column.name)} ${column.pgType}`).join(', ')}`,
    );
  }
  return added.map((column) => column.name);
}
