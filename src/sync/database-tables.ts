import { randomUUID } from 'node:crypto';
import { withInstanceDatabase } from '../catalog/database-live.js';
import { parseTableFullName } from '../catalog/names.js';
import { Access } from '../catalog/privileges.js';
import {
  catalogSecurable,
  isDatabaseCatalog,
  liveSecurable,
  loadCatalog,
  loadStoredSchema,
  schemaSecurable,
} from '../catalog/resolve.js';
import { findCatalog, findSchema, findTable } from '../catalog/store.js';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalString } from '../control/validate.js';
import { isPierError, notFound, PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { instanceForCaller, permissionOn } from '../instances/permissions.js';
import type { InstanceRow } from '../instances/store.js';
import type { Queryable } from '../store/store.js';
import { loadOnInstance, requireCreatorOrManager } from './access.js';
import {
  type DatabaseTableRow,
  deleteDatabaseTableRow,
  findDatabaseTable,
  findDatabaseTableByTarget,
  insertDatabaseTable,
} from './database-tables-store.js';
import { resolvePlace } from './names.js';
import { findSyncedTable, findSyncedTableByTarget } from './store.js';

/** A registered database table and the name of its instance, for the view. */
export interface DatabaseTableRecord {
  table: DatabaseTableRow;
  instanceName: string;
}

/**
 * `POST /api/2.0/database/tables`: shows an existing Postgres table of an
 * instance in the catalog. The instance and database come from the catalog
 * (database catalog) or schema (database-backed schema), otherwise
 * `database_instance_name` and `logical_database_name` are required, and the
 * Postgres table is `<schema>.<table>` of that database. Needs CAN_USE on the
 * instance and what creating a table in the schema needs in the catalog
 * (USE_CATALOG, USE_SCHEMA and CREATE_TABLE, or owning the schema). Nothing
 * is created in Postgres.
 */
export async function createDatabaseTable(
  ctx: ControlContext,
  caller: IdentityRow,
  input: unknown,
): Promise<DatabaseTableRecord> {
  const body = asObject(input, 'The database table');
  const instanceName = optionalString(body, 'database_instance_name');
  const databaseName = optionalString(body, 'logical_database_name');
  const given = instanceName
    ? await instanceForCaller(ctx.store, caller, instanceName, 'CAN_USE')
    : undefined;
  if (typeof body.name === 'string' && !body.name.includes('.')) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `Database table name '${body.name}' is not a three-part name. Name it <catalog>.<schema>.<table>.`,
    );
  }
  const place = await resolvePlace(ctx.store, body.name as string, {
    ...(given ? { instance: given } : {}),
    ...(databaseName ? { databaseName } : {}),
  });
  if (!given) await instanceForCaller(ctx.store, caller, place.instance.name, 'CAN_USE');
  await requireCreateTable(ctx.store, caller, place.name);
  await refuseTakenName(ctx.store, place.name);
  const target = {
    instance_uid: place.instance.uid,
    database_name: place.databaseName,
    ...(await findPostgresTable(
      ctx,
      place.instance,
      place.databaseName,
      place.targetSchema,
      place.targetTable,
    )),
  };
  return ctx.store.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`database-table:${place.name}`]);
    await refuseTakenName(tx, place.name);
    const registered = await findDatabaseTableByTarget(tx, target);
    const synced = await findSyncedTableByTarget(tx, target);
    const other = registered?.name ?? synced?.name;
    if (other) {
      throw new PierError(
        'RESOURCE_ALREADY_EXISTS',
        `Postgres table ${target.target_schema}.${target.target_table} of database '${target.database_name}' is already in the catalog as '${other}'${synced ? ' (a synced table)' : ''}. Use that name.`,
      );
    }
    const table = await insertDatabaseTable(tx, {
      id: randomUUID(),
      name: place.name,
      ...target,
      creator: caller.user_name,
    });
    return { table, instanceName: place.instance.name };
  });
}

/** UC: creating a table in the schema needs USE_CATALOG, USE_SCHEMA and CREATE_TABLE (or owning the schema). */
async function requireCreateTable(db: Queryable, caller: IdentityRow, fullName: string): Promise<void> {
  const names = parseTableFullName(fullName);
  const catalog = await loadCatalog(db, names.catalog);
  const schema = isDatabaseCatalog(catalog)
    ? liveSecurable('SCHEMA', catalog, `${catalog.name}.${names.schema}`)
    : schemaSecurable(catalog, await loadStoredSchema(db, catalog, names.schema));
  const access = await Access.load(db, caller, [catalogSecurable(catalog), schema]);
  access.require('USE_CATALOG', 0);
  if (access.ownsUpTo(1)) return;
  access.require('USE_SCHEMA', 1);
  access.require('CREATE_TABLE', 1);
}

/**
 * A name is one table's: a registered database table, a synced table or a
 * Delta table of the catalog. Also checked when a synced table is created.
 */
export async function refuseTakenName(db: Queryable, fullName: string): Promise<void> {
  const names = parseTableFullName(fullName);
  const catalog = await findCatalog(db, names.catalog);
  const schema = catalog ? await findSchema(db, catalog.id, names.schema) : undefined;
  const taken =
    (await findDatabaseTable(db, fullName)) ??
    (await findSyncedTable(db, fullName)) ??
    (schema ? await findTable(db, schema.id, names.table) : undefined);
  if (taken) {
    throw new PierError('RESOURCE_ALREADY_EXISTS', `Table '${fullName}' already exists. Pick another name.`);
  }
}

/** The Postgres table's own schema and name (matched case-insensitively, as the catalog lower-cases names). */
async function findPostgresTable(
  ctx: ControlContext,
  instance: InstanceRow,
  database: string,
  schema: string,
  table: string,
): Promise<{ target_schema: string; target_table: string }> {
  const missing = () =>
    notFound(
      `Postgres table ${schema}.${table} does not exist in database '${database}' of instance '${instance.name}'. ` +
        'Create it in Postgres first; to have Pier create and fill a table from a Delta table, create a synced table instead.',
    );
  try {
    return await withInstanceDatabase(ctx, instance, database, async (client) => {
      const { rows } = await client.query<{ target_schema: string; target_table: string }>(
        `SELECT n.nspname AS target_schema, c.relname AS target_table
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE lower(n.nspname) = $1 AND lower(c.relname) = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          ORDER BY n.nspname = $1 AND c.relname = $2 DESC LIMIT 1`,
        [schema, table],
      );
      if (!rows[0]) throw missing();
      return rows[0];
    });
  } catch (error) {
    if (
      isPierError(error) &&
      error.kind === 'RESOURCE_DOES_NOT_EXIST' &&
      !/^Postgres table/.test(error.message)
    ) {
      throw missing();
    }
    throw error;
  }
}

/** `GET /api/2.0/database/tables/{name}`: a permission on the instance. */
export async function getDatabaseTable(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
): Promise<DatabaseTableRecord> {
  const { table, instance } = await loadOnInstance(ctx, caller, name, findDatabaseTable, 'database table');
  return { table, instanceName: instance.name };
}

/**
 * `DELETE /api/2.0/database/tables/{name}`: the creator, or CAN_MANAGE on
 * the instance. Unregisters only: the Postgres table and its rows stay.
 */
export async function deleteDatabaseTable(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
): Promise<void> {
  const { table, instance } = await loadOnInstance(ctx, caller, name, findDatabaseTable, 'database table');
  const level = await permissionOn(ctx.store, caller, instance);
  requireCreatorOrManager(caller, table, level, instance.name, 'delete', 'database table');
  await deleteDatabaseTableRow(ctx.store, table.id);
}

/** The SDK's DatabaseTable. */
export function databaseTableView({ table, instanceName }: DatabaseTableRecord) {
  return {
    name: table.name,
    database_instance_name: instanceName,
    logical_database_name: table.database_name,
  };
}
