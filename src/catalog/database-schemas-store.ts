import type { Queryable } from '../store/store.js';

/**
 * Database-backed schemas: a schema of a standard catalog that shows a
 * Postgres schema (same name) of one database of an instance. Pier's
 * extension so `pier demo`'s catalog can also hold the instance's schema
 * (see docs/synced-tables.md).
 */

export async function setSchemaDatabase(
  db: Queryable,
  schemaId: string,
  home: { instance_uid: string; database_name: string },
): Promise<void> {
  await db.query('UPDATE catalog_schemas SET instance_uid = $2, database_name = $3 WHERE id = $1', [
    schemaId,
    home.instance_uid,
    home.database_name,
  ]);
}

export async function findDatabaseBackedSchema(
  db: Queryable,
  catalogId: string,
  schema: string,
): Promise<{ instance_uid: string; database_name: string } | undefined> {
  const { rows } = await db.query<{ instance_uid: string; database_name: string }>(
    `SELECT instance_uid::text, database_name FROM catalog_schemas
      WHERE catalog_id = $1 AND name = $2 AND instance_uid IS NOT NULL`,
    [catalogId, schema],
  );
  return rows[0];
}

/** `catalog.schema` of every database-backed schema of an instance. */
export async function listDatabaseBackedSchemas(db: Queryable, instanceUid: string): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT c.name || '.' || s.name AS name FROM catalog_schemas s JOIN catalogs c ON c.id = s.catalog_id
      WHERE s.instance_uid = $1 ORDER BY 1`,
    [instanceUid],
  );
  return rows.map((row) => row.name);
}
