import { notFound } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import type { Queryable } from '../store/store.js';
import { Access, type Securable } from './privileges.js';
import {
  type CatalogRow,
  findCatalog,
  findSchema,
  findTable,
  type SchemaRow,
  type TableRow,
} from './store.js';

/**
 * Loads catalog objects by name together with the caller's Access on the
 * path down to them. Missing objects are RESOURCE_DOES_NOT_EXIST naming the
 * first missing part.
 */

export function isDatabaseCatalog(catalog: CatalogRow): boolean {
  return catalog.catalog_type === 'MANAGED_ONLINE_CATALOG';
}

export function catalogSecurable(catalog: CatalogRow): Securable {
  return { type: 'CATALOG', id: catalog.id, fullName: catalog.name, owner: catalog.owner };
}

export function schemaSecurable(catalog: CatalogRow, schema: SchemaRow): Securable {
  return { type: 'SCHEMA', id: schema.id, fullName: `${catalog.name}.${schema.name}`, owner: schema.owner };
}

export function tableSecurable(catalog: CatalogRow, schema: SchemaRow, table: TableRow): Securable {
  return {
    type: 'TABLE',
    id: table.id,
    fullName: `${catalog.name}.${schema.name}.${table.name}`,
    owner: table.owner,
  };
}

/**
 * A schema or table of a database catalog lives in Postgres, not in the
 * store: it has no grants of its own and inherits the catalog's owner.
 */
export function liveSecurable(type: 'SCHEMA' | 'TABLE', catalog: CatalogRow, fullName: string): Securable {
  return { type, id: '', fullName, owner: catalog.owner };
}

export async function loadCatalog(db: Queryable, name: string, lock = false): Promise<CatalogRow> {
  const catalog = await findCatalog(db, name, lock);
  if (!catalog) throw notFound(`Catalog '${name}' does not exist.`);
  return catalog;
}

export async function loadStoredSchema(
  db: Queryable,
  catalog: CatalogRow,
  name: string,
  lock = false,
): Promise<SchemaRow> {
  const schema = await findSchema(db, catalog.id, name, lock);
  if (!schema) throw notFound(`Schema '${catalog.name}.${name}' does not exist.`);
  return schema;
}

export async function loadStoredTable(
  db: Queryable,
  catalog: CatalogRow,
  schema: SchemaRow,
  name: string,
  lock = false,
): Promise<TableRow> {
  const table = await findTable(db, schema.id, name, lock);
  if (!table) throw notFound(`Table '${catalog.name}.${schema.name}.${name}' does not exist.`);
  return table;
}

export async function catalogAccess(
  db: Queryable,
  caller: IdentityRow,
  catalog: CatalogRow,
): Promise<Access> {
  return Access.load(db, caller, [catalogSecurable(catalog)]);
}
