import type { Queryable } from './store.js';

/**
 * Leases on work: which Pier process works on what, until when. The
 * reconciler holds one per instance while it drives it; sync workers will
 * hold one per pipeline. A lease names a `resource` (e.g. 'instance') and a
 * `key` (e.g. its uid); claiming skips rows another claimer has locked at
 * this moment (`FOR UPDATE SKIP LOCKED`), so claimers never wait on each
 * other, and a lease whose holder died is free again once it expires.
 *
 * @example
 * const [uid] = await claimLeases(store, 'instance', holder, { keys: [uid], ttlMs: 60_000 });
 * if (uid) { …work…; await renewLease(store, 'instance', uid, holder, 60_000); …; await releaseLease(store, 'instance', uid, holder); }
 */
export interface ClaimOptions {
  /** How long the lease lasts unless renewed. */
  ttlMs: number;
  /** Only these keys (they are offered first: a key without a lease row gets one). Without, any free key. */
  keys?: string[];
  /** At most this many leases (default: all that are free). */
  limit?: number;
  /** Holders known to be dead: their leases are taken before they expire. */
  takeFrom?: string[];
}

/** Makes sure `keys` have lease rows, so they can be claimed. Idempotent. */
export async function offerLeases(db: Queryable, resource: string, keys: string[]): Promise<void> {
  if (keys.length === 0) return;
  await db.query(`INSERT INTO leases (resource, key) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`, [
    resource,
    keys,
  ]);
}

/**
 * Claims the free (never held, released or expired) leases of `resource`,
 * the ones `holder` already holds and those of holders in `takeFrom`, and
 * returns their keys. Rows locked by a
 * concurrent claimer are skipped, never waited for.
 */
export async function claimLeases(
  db: Queryable,
  resource: string,
  holder: string,
  options: ClaimOptions,
): Promise<string[]> {
  if (options.keys) await offerLeases(db, resource, options.keys);
  const { rows } = await db.query<{ key: string }>(
    `WITH free AS (
       SELECT resource, key FROM leases
        WHERE resource = $1 AND ($3::text[] IS NULL OR key = ANY($3))
          AND (holder IS NULL OR holder = $2 OR expires_at <= clock_timestamp() OR holder = ANY($6))
        ORDER BY key
        LIMIT $5
          FOR UPDATE SKIP LOCKED)
     UPDATE leases l SET holder = $2, expires_at = clock_timestamp() + $4::double precision * interval '1 millisecond'
       FROM free WHERE l.resource = free.resource AND l.key = free.key
     RETURNING l.key`,
    [resource, holder, options.keys ?? null, options.ttlMs, options.limit ?? null, options.takeFrom ?? []],
  );
  return rows.map((row) => row.key).sort();
}

/** Extends a lease `holder` still holds; false if it expired and another claimer took it, or it is gone. */
export async function renewLease(
  db: Queryable,
  resource: string,
  key: string,
  holder: string,
  ttlMs: number,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE leases SET expires_at = clock_timestamp() + $4::double precision * interval '1 millisecond'
      WHERE resource = $1 AND key = $2 AND holder = $3`,
    [resource, key, holder, ttlMs],
  );
  return (rowCount ?? 0) > 0;
}

/** Gives a lease back at once (the next claimer need not wait for it to expire). */
export async function releaseLease(
  db: Queryable,
  resource: string,
  key: string,
  holder: string,
): Promise<void> {
  await db.query(
    'UPDATE leases SET holder = NULL, expires_at = NULL WHERE resource = $1 AND key = $2 AND holder = $3',
    [resource, key, holder],
  );
}

/** Removes the lease of work that no longer exists (an instance that was deleted). */
export async function forgetLease(db: Queryable, resource: string, key: string): Promise<void> {
  await db.query('DELETE FROM leases WHERE resource = $1 AND key = $2', [resource, key]);
}
