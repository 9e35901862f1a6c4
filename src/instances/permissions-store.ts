import type { Queryable } from '../store/store.js';

export type InstancePermissionLevel = 'CAN_USE' | 'CAN_MANAGE';

export interface PermissionRow {
  principal: string;
  permission_level: InstancePermissionLevel;
}

export async function listInstancePermissions(db: Queryable, instanceUid: string): Promise<PermissionRow[]> {
  const { rows } = await db.query<PermissionRow>(
    'SELECT principal, permission_level FROM instance_permissions WHERE instance_uid = $1 ORDER BY principal',
    [instanceUid],
  );
  return rows;
}

export async function findInstancePermission(
  db: Queryable,
  instanceUid: string,
  principal: string,
): Promise<InstancePermissionLevel | undefined> {
  const { rows } = await db.query<PermissionRow>(
    'SELECT permission_level FROM instance_permissions WHERE instance_uid = $1 AND lower(principal) = lower($2)',
    [instanceUid, principal],
  );
  return rows[0]?.permission_level;
}

export async function setInstancePermission(
  db: Queryable,
  instanceUid: string,
  principal: string,
  level: InstancePermissionLevel,
): Promise<void> {
  await db.query(
    `INSERT INTO instance_permissions (instance_uid, principal, permission_level) VALUES ($1, $2, $3)
     ON CONFLICT (instance_uid, principal) DO UPDATE SET permission_level = excluded.permission_level`,
    [instanceUid, principal, level],
  );
}

export async function clearInstancePermissions(db: Queryable, instanceUid: string): Promise<void> {
  await db.query('DELETE FROM instance_permissions WHERE instance_uid = $1', [instanceUid]);
}

/** Removes `principal`'s permissions on every instance (its identity was deleted). */
export async function deletePermissionsOfPrincipal(db: Queryable, principal: string): Promise<void> {
  await db.query('DELETE FROM instance_permissions WHERE lower(principal) = lower($1)', [principal]);
}

/** The uids of the instances `principal` holds any permission on. */
export async function listInstanceUidsOfPrincipal(db: Queryable, principal: string): Promise<string[]> {
  const { rows } = await db.query<{ uid: string }>(
    'SELECT instance_uid::text AS uid FROM instance_permissions WHERE lower(principal) = lower($1) ORDER BY 1',
    [principal],
  );
  return rows.map((row) => row.uid);
}
