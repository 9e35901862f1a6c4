import type { Queryable } from '../store/store.js';

/** An existing Postgres table of an instance, registered in the catalog under a three-part name. */
export interface DatabaseTableRow {
  id: string;
  name: string;
  instance_uid: string;
  database_name: string;
  target_schema: string;
  target_table: string;
  creator: string;
  created_at: Date;
}

const COLUMNS =
  'id::text, name, instance_uid::text, database_name, target_schema, target_table, creator, created_at';

export async function insertDatabaseTable(
  db: Queryable,
  row: Omit<DatabaseTableRow, 'created_at'>,
): Promise<DatabaseTableRow> {
  const { rows } = await db.query<DatabaseTableRow>(
    `INSERT INTO database_tables (id, name, instance_uid, database_name, target_schema, target_table, creator)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
    [row.id, row.name, row.instance_uid, row.database_name, row.target_schema, row.target_table, row.creator],
  );
  return rows[0];
}

export async function findDatabaseTable(db: Queryable, name: string): Promise<DatabaseTableRow | undefined> {
  const { rows } = await db.query<DatabaseTableRow>(
    `SELECT ${COLUMNS} FROM database_tables WHERE name = $1`,
    [name],
  );
  return rows[0];
}

export async function findDatabaseTableByTarget(
  db: Queryable,
  target: { instance_uid: string; database_name: string; target_schema: string; target_table: string },
): Promise<DatabaseTableRow | undefined> {
  const { rows } = await db.query<DatabaseTableRow>(
    `SELECT ${COLUMNS} FROM database_tables
      WHERE instance_uid = $1 AND database_name = $2 AND target_schema = $3 AND target_table = $4`,
    [target.instance_uid, target.database_name, target.target_schema, target.target_table],
  );
  return rows[0];
}

export async function deleteDatabaseTableRow(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM database_tables WHERE id = $1', [id]);
}
