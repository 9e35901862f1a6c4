import { createHash } from 'node:crypto';
import pg from 'pg';

/** The advisory lock (per database) under which synced-table roles and schemas are set up. */
const SETUP_LOCK = 'pier_sync_setup';

/** The roles a database's synced tables are written and read through. */
export interface SyncRoles {
  writer: string;
  reader: string;
}

/** Postgres role names are cluster-wide and at most 63 bytes: the database's name, shortened with a hash if long. */
function syncRolesFor(database: string): SyncRoles {
  const tag =
    Buffer.byteLength(database) <= 40
      ? database
      : `${database.slice(0, 30)}_${createHash('sha256').update(database).digest('hex').slice(0, 8)}`;
  return { writer: `pier_sync_writer_${tag}`, reader: `pier_sync_reader_${tag}` };
}

/**
 * Makes the database's writer role (owns every synced table; only the
 * pipeline writes as it) and reader role (SELECT on every synced table),
 * idempotently. Members of databricks_superuser (the instance's creator and
 * admins) get the reader role; others are granted it like any role.
 */
export async function ensureSyncRoles(
  client: pg.ClientBase,
  database: string,
  schema: string,
): Promise<SyncRoles> {
  const roles = syncRolesFor(database);
  // Pipelines of one database set up at the same moment: GRANTs racing on one
  // catalog row fail with "tuple concurrently updated", so they take turns.
  await client.query('SELECT pg_advisory_lock(hashtext($1))', [SETUP_LOCK]);
  try {
    for (const role of [roles.writer, roles.reader]) {
      // Roles are cluster-wide and the lock is per database: pipelines of two databases may still
      // race to create the same role, and the loser's duplicate is harmless.
      await client
        .query(
          `DO $$ BEGIN
             IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${pg.escapeLiteral(role)}) THEN
               CREATE ROLE ${pg.escapeIdentifier(role)} NOLOGIN;
             END IF;
           END $$`,
        )
        .catch((error: { code?: string }) => {
          if (error.code !== '23505' && error.code !== '42710') throw error;
        });
    }
    const { rows } = await client.query("SELECT 1 FROM pg_roles WHERE rolname = 'databricks_superuser'");
    if (rows.length > 0) {
      await client.query(`GRANT ${pg.escapeIdentifier(roles.reader)} TO databricks_superuser`);
    }
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(schema)}`);
    await client.query(
      `GRANT USAGE ON SCHEMA ${pg.escapeIdentifier(schema)} TO ${pg.escapeIdentifier(roles.reader)}, ${pg.escapeIdentifier(roles.writer)}`,
    );
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [SETUP_LOCK]);
  }
  return roles;
}
