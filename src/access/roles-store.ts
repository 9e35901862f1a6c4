import type pg from 'pg';
import type { Queryable } from '../store/store.js';

/**
 * The queries behind instance roles: what Pier recorded about each role it
 * made (`instance_roles` in the store), and what Postgres says about a role
 * (`pg_roles` in the instance itself).
 */
export const IDENTITY_TYPES = ['USER', 'SERVICE_PRINCIPAL', 'GROUP', 'PG_ONLY'] as const;
export type IdentityType = (typeof IDENTITY_TYPES)[number];
export const ATTRIBUTES = ['createdb', 'createrole', 'bypassrls'] as const;
export type Attributes = Partial<Record<(typeof ATTRIBUTES)[number], boolean>>;

export interface RoleRecord {
  identity_type: IdentityType;
  membership_role: string | null;
  attributes: Attributes;
}

/** What Postgres says about a role. */
export interface PgRole {
  rolname: string;
  rolcanlogin: boolean;
  rolcreatedb: boolean;
  rolcreaterole: boolean;
  rolbypassrls: boolean;
  superuser_member: boolean;
}

/** The roles of an instance (all but Postgres' own and databricks_superuser), or the one named. */
export async function readPgRoles(client: pg.Client, name?: string): Promise<PgRole[]> {
  const { rows } = await client.query<PgRole>(
    `SELECT r.rolname, r.rolcanlogin, r.rolcreatedb, r.rolcreaterole, r.rolbypassrls,
            pg_has_role(r.oid, 'databricks_superuser', 'MEMBER') AND r.rolname <> 'databricks_superuser' AS superuser_member
       FROM pg_roles r
      WHERE r.rolname !~ '^pg_' AND r.rolname NOT IN ('postgres', 'databricks_superuser')
        AND ($1::text IS NULL OR r.rolname = $1)
      ORDER BY r.rolname`,
    [name ?? null],
  );
  return rows;
}

/** What Pier recorded about the roles it made in an instance, by name. */
export async function roleRecords(db: Queryable, instanceUid: string): Promise<Map<string, RoleRecord>> {
  const { rows } = await db.query<RoleRecord & { name: string }>(
    'SELECT name, identity_type, membership_role, attributes FROM instance_roles WHERE instance_uid = $1',
    [instanceUid],
  );
  return new Map(rows.map((row) => [row.name, row]));
}

export async function saveRoleRecord(
  db: Queryable,
  instanceUid: string,
  name: string,
  record: RoleRecord,
  createdBy: string,
): Promise<void> {
  await db.query(
    `INSERT INTO instance_roles (instance_uid, name, identity_type, membership_role, attributes, created_by)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (instance_uid, name) DO UPDATE SET identity_type = excluded.identity_type,
       membership_role = excluded.membership_role, attributes = excluded.attributes`,
    [
      instanceUid,
      name,
      record.identity_type,
      record.membership_role,
      JSON.stringify(record.attributes),
      createdBy,
    ],
  );
}

export async function deleteRoleRecord(db: Queryable, instanceUid: string, name: string): Promise<void> {
  await db.query('DELETE FROM instance_roles WHERE instance_uid = $1 AND name = $2', [instanceUid, name]);
}
