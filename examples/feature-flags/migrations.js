// @ts-check
/**
 * The schema this app needs, applied on start: numbered steps, each in one
 * transaction, recorded in flags.schema_migrations. The app's role has
 * CONNECT and CREATE on the database (its Apps resource), so it creates
 * and owns its schema. An advisory lock lets two copies start at once.
 */
const MIGRATIONS = [
  `CREATE TABLE flags.feature_flags (
     name text PRIMARY KEY,
     enabled boolean NOT NULL DEFAULT false,
     description text NOT NULL DEFAULT '',
     updated_at timestamptz NOT NULL DEFAULT now()
   )`,
  `INSERT INTO flags.feature_flags (name, enabled, description) VALUES
     ('new-checkout', false, 'The one-page checkout'),
     ('dark-mode', true, 'Dark theme for the order pages'),
     ('bulk-export', false, 'CSV export of all orders')`,
];

/** @param {import('pg').Pool} pool */
export async function migrate(pool) {
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock(hashtext('feature-flags migrations'))");
    await client.query('CREATE SCHEMA IF NOT EXISTS flags');
    await client.query('CREATE TABLE IF NOT EXISTS flags.schema_migrations (version integer PRIMARY KEY)');
    const { rows } = await client.query('SELECT coalesce(max(version), 0) AS version FROM flags.schema_migrations');
    for (let version = rows[0].version + 1; version <= MIGRATIONS.length; version++) {
      await client.query('BEGIN');
      await client.query(MIGRATIONS[version - 1]);
      await client.query('INSERT INTO flags.schema_migrations (version) VALUES ($1)', [version]);
      await client.query('COMMIT');
      console.log(`migration ${version} applied`);
    }
  } finally {
    await client.query("SELECT pg_advisory_unlock(hashtext('feature-flags migrations'))").catch(() => {});
    client.release();
  }
}
