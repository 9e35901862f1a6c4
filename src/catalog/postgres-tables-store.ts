import type { Queryable } from '../store/store.js';

/**
 * Tables of the catalog that are Postgres tables of an instance, recorded
 * outside `catalog_tables`: synced tables (with their pipeline) and
 * registered database tables (`POST /api/2.0/database/tables`). The catalog
 * lists them beside its Delta tables.
 */
export interface PostgresBackedTable {
  /** Three-part name. */
  name: string;
  instance_uid: string;
  database_name: string;
  target_schema: string;
  target_table: string;
  /** Set for synced tables. */
  pipeline_id: string | null;
  creator: string;
  created_at: Date;
}

/** Those whose name lies in `catalog.schema` (one, with `table`), by name. */
export async function listPostgresBackedTables(
  db: Queryable,
  catalog: string,
  schema: string,
  table?: string,
): Promise<PostgresBackedTable[]> {
  const match =
    table === undefined
      ? `${likeEscape(`${catalog}.${schema}.`)}%`
      : likeEscape(`${catalog}.${schema}.${table}`);
  const { rows } = await db.query<PostgresBackedTable>(
    `SELECT * FROM (
       SELECT name, instance_uid::text, database_name, target_schema, target_table, pipeline_id::text, creator, created_at
         FROM synced_tables WHERE name LIKE $1 ESCAPE '\\'
       UNION ALL
       SELECT name, instance_uid::text, database_name, target_schema, target_table, NULL, creator, created_at
         FROM database_tables WHERE name LIKE $1 ESCAPE '\\'
     ) t ORDER BY name COLLATE "C"`,
    [match],
  );
  return rows;
}

function likeEscape(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
