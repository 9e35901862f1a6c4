import pg from 'pg';
import { isPierError, PierError } from '../errors.js';
import { noteFailure } from '../failures.js';
import { migrations } from './migrations.js';

/** Anything that runs a query: the pool, or a client inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
}

/**
 * The control plane's single source of truth: one Postgres database (the
 * embedded system cluster, or an external one given by --store-url). Every
 * API state change runs in one `transaction`.
 */
export class Store implements Queryable {
  readonly pool: pg.Pool;

  constructor(readonly url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 10, idleTimeoutMillis: 30_000 });
    // An idle client losing its connection (store restart) must not crash Pier; the pool makes a new one.
    this.pool.on('error', (error) => noteFailure('store.idle-connection', error));
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(text, values);
  }

  /**
   * Runs `work` in one transaction; rolls back on any error.
   * @example
   * await store.transaction(async (tx) => { await tx.query('INSERT …'); });
   */
  async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      // The work's error is the one to report; a failed ROLLBACK (connection gone) is noted.
      await client.query('ROLLBACK').catch((cause) => noteFailure('store.rollback', cause));
      throw error;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * Connects and applies every migration not yet applied (serialised by an
 * advisory lock). `beforeMigrate` looks at the store first and may refuse it
 * (its error is passed on as is): a refused store is left exactly as it was.
 */
export async function openStore(
  url: string,
  options: { beforeMigrate?: (store: Store) => Promise<void> } = {},
): Promise<Store> {
  const store = new Store(url);
  try {
    await options.beforeMigrate?.(store);
    await migrate(store);
  } catch (cause) {
    await store.close();
    if (isPierError(cause)) throw cause;
    throw new PierError(
      'INTERNAL_ERROR',
      `Cannot prepare the control-plane store: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  return store;
}

const MIGRATION_LOCK = 0x70696572; // "pier"

async function migrate(store: Store): Promise<void> {
  await store.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.query(
      'CREATE TABLE IF NOT EXISTS pier_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const { rows } = await tx.query<{ version: number }>('SELECT version FROM pier_migrations');
    const applied = new Set(rows.map((row) => row.version));
    for (const migration of migrations) {
      if (applied.has(migration.version)) continue;
      await tx.query(migration.sql);
      await tx.query('INSERT INTO pier_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
    }
  });
}
