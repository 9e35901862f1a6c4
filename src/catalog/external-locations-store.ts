import type { Queryable } from '../store/store.js';

/**
 * Typed queries for Unity Catalog external locations (migration 6). Paths
 * arrive here already resolved (catalog/storage-paths.ts): `path` is a
 * realpath without a trailing slash.
 */

export interface ExternalLocationRow {
  id: string;
  name: string;
  /** As the admin gave it, normalised to a file:// URL. */
  url: string;
  /** The realpath of the url's directory: what every check compares against. */
  path: string;
  credential_name: string | null;
  comment: string | null;
  read_only: boolean;
  owner: string;
  created_at: Date;
  created_by: string;
  updated_at: Date;
  updated_by: string;
}

const COLUMNS =
  'id::text, name, url, path, credential_name, comment, read_only, owner, created_at, created_by, updated_at, updated_by';

/** `path` is `dir` or lies below it (SQL over two text parameters or columns). */
export const PATH_WITHIN = (path: string, dir: string) =>
  `(${path} = ${dir} OR starts_with(${path}, ${dir} || '/'))`;

/**
 * Serialises every change that could make two storage paths overlap (new
 * tables, new or moved locations) for the rest of the transaction.
 */
export async function lockStoragePaths(db: Queryable): Promise<void> {
  await db.query(`SELECT pg_advisory_xact_lock(hashtext('pier.storage_paths'))`);
}

export async function insertExternalLocation(
  db: Queryable,
  row: Pick<
    ExternalLocationRow,
    'id' | 'name' | 'url' | 'path' | 'credential_name' | 'comment' | 'read_only' | 'owner'
  >,
): Promise<ExternalLocationRow> {
  const { rows } = await db.query<ExternalLocationRow>(
    `INSERT INTO external_locations (id, name, url, path, credential_name, comment, read_only, owner, created_by, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8) RETURNING ${COLUMNS}`,
    [row.id, row.name, row.url, row.path, row.credential_name, row.comment, row.read_only, row.owner],
  );
  return rows[0];
}

export async function findExternalLocation(
  db: Queryable,
  name: string,
  lock = false,
): Promise<ExternalLocationRow | undefined> {
  const { rows } = await db.query<ExternalLocationRow>(
    `SELECT ${COLUMNS} FROM external_locations WHERE name = $1${lock ? ' FOR UPDATE' : ''}`,
    [name],
  );
  return rows[0];
}

/** Locations in name order after `afterName`; the caller filters by privilege. */
export async function listExternalLocationsPage(
  db: Queryable,
  afterName: string,
  limit: number,
): Promise<ExternalLocationRow[]> {
  const { rows } = await db.query<ExternalLocationRow>(
    `SELECT ${COLUMNS} FROM external_locations WHERE name COLLATE "C" > $1 ORDER BY name COLLATE "C" LIMIT $2`,
    [afterName, limit],
  );
  return rows;
}

/** Every location (admins make them, so there are few): for lexical checks before touching the disk. */
export async function listAllExternalLocations(db: Queryable): Promise<ExternalLocationRow[]> {
  const { rows } = await db.query<ExternalLocationRow>(
    `SELECT ${COLUMNS} FROM external_locations ORDER BY name`,
  );
  return rows;
}

/** A location whose directory contains `path`, lies inside it or is it (other than `exceptId`). */
export async function findOverlappingLocation(
  db: Queryable,
  path: string,
  exceptId?: string,
): Promise<ExternalLocationRow | undefined> {
  const { rows } = await db.query<ExternalLocationRow>(
    `SELECT ${COLUMNS} FROM external_locations
      WHERE (${PATH_WITHIN('$1', 'path')} OR ${PATH_WITHIN('path', '$1')}) AND ($2::uuid IS NULL OR id <> $2)
      LIMIT 1`,
    [path, exceptId ?? null],
  );
  return rows[0];
}

export async function updateExternalLocationRow(
  db: Queryable,
  id: string,
  fields: Pick<
    ExternalLocationRow,
    'name' | 'url' | 'path' | 'credential_name' | 'comment' | 'read_only' | 'owner'
  >,
  updatedBy: string,
): Promise<ExternalLocationRow> {
  const { rows } = await db.query<ExternalLocationRow>(
    `UPDATE external_locations
        SET name = $2, url = $3, path = $4, credential_name = $5, comment = $6, read_only = $7, owner = $8,
            updated_by = $9, updated_at = now()
      WHERE id = $1 RETURNING ${COLUMNS}`,
    [
      id,
      fields.name,
      fields.url,
      fields.path,
      fields.credential_name,
      fields.comment,
      fields.read_only,
      fields.owner,
      updatedBy,
    ],
  );
  return rows[0];
}

export async function deleteExternalLocationRow(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM external_locations WHERE id = $1', [id]);
}
