import type { Queryable } from '../store/store.js';
import { PATH_WITHIN } from './external-locations-store.js';

/**
 * Typed queries for Unity Catalog objects: catalogs, schemas and tables.
 * Names arrive here already validated and lower-cased (catalog/names.ts).
 */

type CatalogType = 'MANAGED_CATALOG' | 'MANAGED_ONLINE_CATALOG';

interface Audited {
  id: string;
  name: string;
  comment: string | null;
  properties: Record<string, string>;
  owner: string;
  created_at: Date;
  created_by: string;
  updated_at: Date;
  updated_by: string;
}

export interface CatalogRow extends Audited {
  catalog_type: CatalogType;
  storage_root: string | null;
  /** Set for database catalogs: the instance and database the catalog shows. */
  instance_uid: string | null;
  database_name: string | null;
}

export interface SchemaRow extends Audited {
  catalog_id: string;
  /** Set for a database-backed schema: the instance (by name) and database it shows. */
  database_instance_name: string | null;
  database_name: string | null;
}

/** A column as Unity Catalog reports it (ColumnInfo). */
export interface ColumnInfo {
  name: string;
  type_name: string;
  type_text: string;
  type_json: string;
  position: number;
  nullable: boolean;
  partition_index?: number;
  type_precision?: number;
  type_scale?: number;
  comment?: string;
}

export interface TableRow extends Audited {
  schema_id: string;
  table_type: string;
  data_source_format: string;
  storage_location: string;
  /**
   * The realpath the table was registered at: what the no-overlap rule
   * compares, and what a reader of the table's files opens.
   */
  storage_path: string;
  columns: ColumnInfo[];
}

const AUDITED = 'id::text, name, comment, properties, owner, created_at, created_by, updated_at, updated_by';
const CATALOG_COLUMNS = `${AUDITED}, catalog_type, storage_root, instance_uid::text, database_name`;
const SCHEMA_COLUMNS = `${AUDITED}, catalog_id::text,
  (SELECT i.name FROM instances i WHERE i.uid = catalog_schemas.instance_uid) AS database_instance_name, database_name`;
const TABLE_COLUMNS = `${AUDITED}, schema_id::text, table_type, data_source_format, storage_location, storage_path, columns`;

// ---- catalogs -------------------------------------------------------------

export async function insertCatalog(
  db: Queryable,
  row: Pick<
    CatalogRow,
    'id' | 'name' | 'catalog_type' | 'comment' | 'properties' | 'storage_root' | 'owner'
  > & {
    instance_uid?: string;
    database_name?: string;
  },
): Promise<CatalogRow> {
  const { rows } = await db.query<CatalogRow>(
    `INSERT INTO catalogs (id, name, catalog_type, comment, properties, storage_root, owner, created_by, updated_by,
                           instance_uid, database_name)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7, $8, $9) RETURNING ${CATALOG_COLUMNS}`,
    [
      row.id,
      row.name,
      row.catalog_type,
      row.comment,
      JSON.stringify(row.properties),
      row.storage_root,
      row.owner,
      row.instance_uid ?? null,
      row.database_name ?? null,
    ],
  );
  return rows[0];
}

export async function findCatalog(
  db: Queryable,
  name: string,
  lock = false,
): Promise<CatalogRow | undefined> {
  const { rows } = await db.query<CatalogRow>(
    `SELECT ${CATALOG_COLUMNS} FROM catalogs WHERE name = $1${lock ? ' FOR UPDATE' : ''}`,
    [name],
  );
  return rows[0];
}

/** Catalogs in name order after `afterName`; the caller filters by privilege. */
export async function listCatalogsPage(
  db: Queryable,
  afterName: string,
  limit: number,
): Promise<CatalogRow[]> {
  const { rows } = await db.query<CatalogRow>(
    `SELECT ${CATALOG_COLUMNS} FROM catalogs WHERE name COLLATE "C" > $1 ORDER BY name COLLATE "C" LIMIT $2`,
    [afterName, limit],
  );
  return rows;
}

/** Database catalogs of one instance in name order after `afterName`. */
export async function listDatabaseCatalogsOfInstance(
  db: Queryable,
  instanceUid: string,
  afterName: string,
  limit: number,
): Promise<CatalogRow[]> {
  const { rows } = await db.query<CatalogRow>(
    `SELECT ${CATALOG_COLUMNS} FROM catalogs WHERE instance_uid = $1 AND name COLLATE "C" > $2
      ORDER BY name COLLATE "C" LIMIT $3`,
    [instanceUid, afterName, limit],
  );
  return rows;
}

export async function updateCatalogRow(
  db: Queryable,
  id: string,
  fields: { name: string; comment: string | null; properties: Record<string, string>; owner: string },
  updatedBy: string,
): Promise<CatalogRow> {
  const { rows } = await db.query<CatalogRow>(
    `UPDATE catalogs SET name = $2, comment = $3, properties = $4, owner = $5, updated_by = $6, updated_at = now()
      WHERE id = $1 RETURNING ${CATALOG_COLUMNS}`,
    [id, fields.name, fields.comment, JSON.stringify(fields.properties), fields.owner, updatedBy],
  );
  return rows[0];
}

export async function deleteCatalogRow(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM catalogs WHERE id = $1', [id]);
}

// ---- schemas --------------------------------------------------------------

export async function insertSchema(
  db: Queryable,
  row: Pick<SchemaRow, 'id' | 'catalog_id' | 'name' | 'comment' | 'properties' | 'owner'>,
): Promise<SchemaRow> {
  const { rows } = await db.query<SchemaRow>(
    `INSERT INTO catalog_schemas (id, catalog_id, name, comment, properties, owner, created_by, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6, $6, $6) RETURNING ${SCHEMA_COLUMNS}`,
    [row.id, row.catalog_id, row.name, row.comment, JSON.stringify(row.properties), row.owner],
  );
  return rows[0];
}

export async function findSchema(
  db: Queryable,
  catalogId: string,
  name: string,
  lock = false,
): Promise<SchemaRow | undefined> {
  const { rows } = await db.query<SchemaRow>(
    `SELECT ${SCHEMA_COLUMNS} FROM catalog_schemas WHERE catalog_id = $1 AND name = $2${lock ? ' FOR UPDATE' : ''}`,
    [catalogId, name],
  );
  return rows[0];
}

export async function listSchemasPage(
  db: Queryable,
  catalogId: string,
  afterName: string,
  limit: number,
): Promise<SchemaRow[]> {
  const { rows } = await db.query<SchemaRow>(
    `SELECT ${SCHEMA_COLUMNS} FROM catalog_schemas WHERE catalog_id = $1 AND name COLLATE "C" > $2 ORDER BY name COLLATE "C" LIMIT $3`,
    [catalogId, afterName, limit],
  );
  return rows;
}

export async function countSchemas(db: Queryable, catalogId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM catalog_schemas WHERE catalog_id = $1',
    [catalogId],
  );
  return rows[0].n;
}

export async function updateSchemaRow(
  db: Queryable,
  id: string,
  fields: { name: string; comment: string | null; properties: Record<string, string>; owner: string },
  updatedBy: string,
): Promise<SchemaRow> {
  const { rows } = await db.query<SchemaRow>(
    `UPDATE catalog_schemas SET name = $2, comment = $3, properties = $4, owner = $5, updated_by = $6, updated_at = now()
      WHERE id = $1 RETURNING ${SCHEMA_COLUMNS}`,
    [id, fields.name, fields.comment, JSON.stringify(fields.properties), fields.owner, updatedBy],
  );
  return rows[0];
}

export async function deleteSchemaRow(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM catalog_schemas WHERE id = $1', [id]);
}

// ---- tables ---------------------------------------------------------------

export async function insertTable(
  db: Queryable,
  row: Pick<
    TableRow,
    | 'id'
    | 'schema_id'
    | 'name'
    | 'table_type'
    | 'data_source_format'
    | 'storage_location'
    | 'storage_path'
    | 'columns'
    | 'comment'
    | 'properties'
    | 'owner'
  >,
): Promise<TableRow> {
  const { rows } = await db.query<TableRow>(
    `INSERT INTO catalog_tables (id, schema_id, name, table_type, data_source_format, storage_location, columns,
                                 comment, properties, owner, created_by, updated_by, storage_path)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10, $11) RETURNING ${TABLE_COLUMNS}`,
    [
      row.id,
      row.schema_id,
      row.name,
      row.table_type,
      row.data_source_format,
      row.storage_location,
      JSON.stringify(row.columns),
      row.comment,
      JSON.stringify(row.properties),
      row.owner,
      row.storage_path,
    ],
  );
  return rows[0];
}

/**
 * The full name of a table whose directory is `path` or contains it, or
 * (unless `containingOnly`) lies inside it.
 */
export async function findOverlappingTable(
  db: Queryable,
  path: string,
  containingOnly = false,
): Promise<string | undefined> {
  const { rows } = await db.query<{ full_name: string }>(
    `SELECT c.name || '.' || s.name || '.' || t.name AS full_name
       FROM catalog_tables t JOIN catalog_schemas s ON s.id = t.schema_id JOIN catalogs c ON c.id = s.catalog_id
      WHERE ${PATH_WITHIN('$1', 't.storage_path')} OR (NOT $2 AND ${PATH_WITHIN('t.storage_path', '$1')})
      ORDER BY 1 LIMIT 1`,
    [path, containingOnly],
  );
  return rows[0]?.full_name;
}

/** How many tables are registered at or below `dir`, and outside `keep` when given. */
export async function countTablesUnder(db: Queryable, dir: string, keep?: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM catalog_tables
      WHERE ${PATH_WITHIN('storage_path', '$1')} AND ($2::text IS NULL OR NOT ${PATH_WITHIN('storage_path', '$2')})`,
    [dir, keep ?? null],
  );
  return rows[0].n;
}

export async function findTable(
  db: Queryable,
  schemaId: string,
  name: string,
  lock = false,
): Promise<TableRow | undefined> {
  const { rows } = await db.query<TableRow>(
    `SELECT ${TABLE_COLUMNS} FROM catalog_tables WHERE schema_id = $1 AND name = $2${lock ? ' FOR UPDATE' : ''}`,
    [schemaId, name],
  );
  return rows[0];
}

export async function listTablesPage(
  db: Queryable,
  schemaId: string,
  afterName: string,
  limit: number,
): Promise<TableRow[]> {
  const { rows } = await db.query<TableRow>(
    `SELECT ${TABLE_COLUMNS} FROM catalog_tables WHERE schema_id = $1 AND name COLLATE "C" > $2 ORDER BY name COLLATE "C" LIMIT $3`,
    [schemaId, afterName, limit],
  );
  return rows;
}

export async function countTablesInSchema(db: Queryable, schemaId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM catalog_tables WHERE schema_id = $1',
    [schemaId],
  );
  return rows[0].n;
}

export async function updateTableOwner(
  db: Queryable,
  id: string,
  owner: string,
  updatedBy: string,
): Promise<TableRow> {
  const { rows } = await db.query<TableRow>(
    `UPDATE catalog_tables SET owner = $2, updated_by = $3, updated_at = now() WHERE id = $1 RETURNING ${TABLE_COLUMNS}`,
    [id, owner, updatedBy],
  );
  return rows[0];
}

export async function deleteTableRow(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM catalog_tables WHERE id = $1', [id]);
}

/**
 * Hands every catalog, schema, table and external location `from` owns to `to` (when `from`'s
 * identity is deleted, so a later identity of the same name inherits
 * nothing). Returns how many objects changed owner.
 */
export async function transferCatalogOwnership(db: Queryable, from: string, to: string): Promise<number> {
  let moved = 0;
  for (const table of ['catalogs', 'catalog_schemas', 'catalog_tables', 'external_locations']) {
    const { rowCount } = await db.query(
      `UPDATE ${table} SET owner = $2, updated_by = $2, updated_at = now() WHERE lower(owner) = lower($1)`,
      [from, to],
    );
    moved += rowCount ?? 0;
  }
  return moved;
}
