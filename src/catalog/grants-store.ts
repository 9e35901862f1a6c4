import type { Queryable } from '../store/store.js';

/** Which kind of object a grant is on: decides the column it is stored in. */
export type GrantSecurableKind = 'catalog' | 'schema' | 'table' | 'external_location';

export interface GrantRow {
  securable_id: string;
  principal: string;
  privilege: string;
}

/** Every grant on the given securables (an object and its ancestors), optionally for one principal. */
export async function listGrants(
  db: Queryable,
  securableIds: string[],
  principal?: string,
): Promise<GrantRow[]> {
  const { rows } = await db.query<GrantRow>(
    `SELECT securable_id::text, principal, privilege FROM catalog_grants
      WHERE securable_id = ANY($1::uuid[]) AND ($2::text IS NULL OR lower(principal) = lower($2))
      ORDER BY principal, privilege`,
    [securableIds, principal ?? null],
  );
  return rows;
}

export async function insertGrant(
  db: Queryable,
  kind: GrantSecurableKind,
  securableId: string,
  principal: string,
  privilege: string,
): Promise<void> {
  await db.query(
    `INSERT INTO catalog_grants (${kind}_id, principal, privilege) VALUES ($1, $2, $3)
     ON CONFLICT (securable_id, principal, privilege) DO NOTHING`,
    [securableId, principal, privilege],
  );
}

export async function deleteGrant(
  db: Queryable,
  securableId: string,
  principal: string,
  privilege: string,
): Promise<void> {
  await db.query(
    'DELETE FROM catalog_grants WHERE securable_id = $1 AND lower(principal) = lower($2) AND privilege = $3',
    [securableId, principal, privilege],
  );
}

/** Removes every grant to `principal` on any securable (its identity was deleted). Returns how many. */
export async function deleteGrantsOfPrincipal(db: Queryable, principal: string): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM catalog_grants WHERE lower(principal) = lower($1)', [
    principal,
  ]);
  return rowCount ?? 0;
}
