import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { ControlContext } from '../control/context.js';
import { invalidParameter, PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { instanceForCaller } from '../instances/permissions.js';
import { withInstanceDatabase } from './database-live.js';
import { setSchemaDatabase } from './database-schemas-store.js';
import { loadCatalog } from './resolve.js';
import { type CatalogRow, findSchema, insertSchema, type SchemaRow } from './store.js';

/**
 * `POST /unity-catalog/schemas` with `database_instance_name` (Pier's
 * extension): a schema of a standard catalog that shows the Postgres schema
 * of the same name in `database_name` of the instance, both created if
 * missing. Needs what any schema needs (checked by the caller) and CAN_USE
 * on the instance. Databricks' database catalogs are whole catalogs; this
 * lets one catalog hold Delta schemas and an instance's schema side by side.
 */
export async function createDatabaseBackedSchema(
  ctx: ControlContext,
  caller: IdentityRow,
  catalog: CatalogRow,
  fields: {
    name: string;
    instanceName: string;
    databaseName: string;
    comment: string | null;
    properties: Record<string, string>;
  },
): Promise<SchemaRow> {
  const instance = await instanceForCaller(ctx.store, caller, fields.instanceName, 'CAN_USE');
  if (['template0', 'template1'].includes(fields.databaseName)) {
    throw invalidParameter(
      `Database '${fields.databaseName}' is a template database. Pick another database_name.`,
    );
  }
  return ctx.store.transaction(async (tx) => {
    const locked = await loadCatalog(tx, catalog.name, true);
    if (await findSchema(tx, locked.id, fields.name)) {
      throw new PierError(
        'RESOURCE_ALREADY_EXISTS',
        `Schema '${catalog.name}.${fields.name}' already exists. Pick another name.`,
      );
    }
    const schema = await insertSchema(tx, {
      id: randomUUID(),
      catalog_id: locked.id,
      name: fields.name,
      comment: fields.comment,
      properties: fields.properties,
      owner: caller.user_name,
    });
    await setSchemaDatabase(tx, schema.id, {
      instance_uid: instance.uid,
      database_name: fields.databaseName,
    });
    await withInstanceDatabase(ctx, instance, 'postgres', async (client) => {
      const { rows } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [
        fields.databaseName,
      ]);
      if (rows.length === 0) {
        await client.query(
          `CREATE DATABASE ${pg.escapeIdentifier(fields.databaseName)} OWNER databricks_superuser`,
        );
      }
    });
    await withInstanceDatabase(ctx, instance, fields.databaseName, async (client) => {
      await client.query(
        `CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(fields.name)} AUTHORIZATION databricks_superuser`,
      );
    });
    return { ...schema, database_instance_name: instance.name, database_name: fields.databaseName };
  });
}
