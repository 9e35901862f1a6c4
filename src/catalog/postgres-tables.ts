import type { ControlContext } from '../control/context.js';
import { isPierError } from '../errors.js';
import { noteFailure } from '../failures.js';
import { findInstanceByUid } from '../instances/store.js';
import type { Queryable } from '../store/store.js';
import { listLiveTables, withInstanceDatabase } from './database-live.js';
import { listPostgresBackedTables, type PostgresBackedTable } from './postgres-tables-store.js';
import type { CatalogRow } from './store.js';
import type { LiveTable } from './views.js';

/**
 * Synced tables and registered database tables as the catalog shows them:
 * Postgres tables (`FOREIGN`, `POSTGRESQL_FORMAT`), a synced table with its
 * `pipeline_id`. In a standard schema their columns are read from their
 * instance (as its superuser: the catalog's privileges decided already
 * whether the caller sees the table); an instance that is not AVAILABLE
 * leaves the columns out rather than failing the whole listing.
 */
export async function postgresBackedLiveTables(
  ctx: Pick<ControlContext, 'store' | 'engine' | 'config'>,
  rows: PostgresBackedTable[],
): Promise<LiveTable[]> {
  // One connection per database, however many of its tables are listed.
  const byDatabase = new Map<string, PostgresBackedTable[]>();
  for (const row of rows) {
    const key = `${row.instance_uid}/${row.database_name}`;
    byDatabase.set(key, [...(byDatabase.get(key) ?? []), row]);
  }
  const live = new Map<string, LiveTable>();
  for (const group of byDatabase.values()) {
    const instance = await findInstanceByUid(ctx.store, group[0].instance_uid);
    if (!instance) continue;
    await withInstanceDatabase(ctx, instance, group[0].database_name, async (client) => {
      for (const row of group) {
        const [table] = await listLiveTables(client, row.target_schema.toLowerCase(), {
          name: row.target_table.toLowerCase(),
        });
        if (table) live.set(row.name, table);
      }
    }).catch((error) => {
      if (!isPierError(error)) noteFailure('catalog.postgres-tables', error);
    });
  }
  return rows.map((row) => {
    const table = live.get(row.name);
    return {
      name: row.name.split('.')[2],
      owner: table?.owner ?? row.creator,
      table_type: table?.table_type ?? 'FOREIGN',
      columns: table?.columns ?? [],
      ...(row.pipeline_id ? { pipeline_id: row.pipeline_id } : {}),
    };
  });
}

/** Tables read live from Postgres, with the pipeline of those that are synced tables. */
export async function withPipelines(
  db: Queryable,
  catalog: CatalogRow,
  schema: string,
  tables: LiveTable[],
): Promise<LiveTable[]> {
  if (tables.length === 0) return tables;
  const synced = new Map(
    (await listPostgresBackedTables(db, catalog.name, schema))
      .filter((row) => row.pipeline_id)
      .map((row) => [row.name.split('.')[2], row.pipeline_id as string]),
  );
  return tables.map((table) => {
    const pipeline = synced.get(table.name);
    return pipeline ? { ...table, pipeline_id: pipeline } : table;
  });
}
