import { findDatabaseBackedSchema, listDatabaseBackedSchemas } from '../catalog/database-schemas-store.js';
import { parseTableFullName } from '../catalog/names.js';
import { findCatalog } from '../catalog/store.js';
import { invalidParameter, notFound } from '../errors.js';
import { findInstanceByUid, type InstanceRow } from '../instances/store.js';
import type { Queryable } from '../store/store.js';

/** Where a synced table lands: its catalog name and its Postgres home. */
export interface SyncedTablePlace {
  name: string;
  instance: InstanceRow;
  databaseName: string;
  targetSchema: string;
  targetTable: string;
}

/**
 * Resolves a synced table's name to where it lives. Inside a database
 * catalog, or a database-backed schema, the instance and database come from
 * the catalog (and must agree with any given); otherwise
 * `database_instance_name` + `logical_database_name` are required. A bare
 * table name (Pier's shorthand) lands in the instance's one registered schema.
 */
export async function resolvePlace(
  db: Queryable,
  rawName: string,
  given: { instance?: InstanceRow; databaseName?: string },
): Promise<SyncedTablePlace> {
  let fullName = rawName;
  if (typeof rawName === 'string' && !rawName.includes('.') && given.instance) {
    const registered = await listDatabaseBackedSchemas(db, given.instance.uid);
    if (registered.length !== 1) {
      throw invalidParameter(
        `Synced table name '${rawName}' is not a three-part name, and instance '${given.instance.name}' has ${registered.length === 0 ? 'no registered schema' : `several registered schemas (${registered.join(', ')})`}. Name it <catalog>.<schema>.<table>.`,
      );
    }
    fullName = `${registered[0]}.${rawName}`;
  }
  if (typeof fullName !== 'string' || fullName === '') {
    throw invalidParameter(
      `Field 'name' is required: the synced table's three-part name <catalog>.<schema>.<table>.`,
    );
  }
  const names = parseTableFullName(fullName);
  const name = `${names.catalog}.${names.schema}.${names.table}`;
  const catalog = await findCatalog(db, names.catalog);
  let home: { instance_uid: string; database_name: string } | undefined;
  if (catalog?.instance_uid && catalog.database_name) {
    home = { instance_uid: catalog.instance_uid, database_name: catalog.database_name };
  } else if (catalog) {
    home = await findDatabaseBackedSchema(db, catalog.id, names.schema);
  }
  if (home) {
    const instance = await findInstanceByUid(db, home.instance_uid);
    if (!instance) throw notFound(`The database instance of catalog '${names.catalog}' no longer exists.`);
    if (given.instance && given.instance.uid !== instance.uid) {
      throw invalidParameter(
        `'${names.catalog}.${names.schema}' shows instance '${instance.name}', not '${given.instance.name}'. Leave database_instance_name out or name the same instance.`,
      );
    }
    if (given.databaseName && given.databaseName !== home.database_name) {
      throw invalidParameter(
        `'${names.catalog}.${names.schema}' shows database '${home.database_name}', not '${given.databaseName}'. Leave logical_database_name out or name the same database.`,
      );
    }
    return {
      name,
      instance,
      databaseName: home.database_name,
      targetSchema: names.schema,
      targetTable: names.table,
    };
  }
  if (!given.instance || !given.databaseName) {
    throw invalidParameter(
      `'${names.catalog}' is not a database catalog, so database_instance_name and logical_database_name are required: the instance and Postgres database the synced table lands in.`,
    );
  }
  return {
    name,
    instance: given.instance,
    databaseName: given.databaseName,
    targetSchema: names.schema,
    targetTable: names.table,
  };
}
