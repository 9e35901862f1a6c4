import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalBoolean, optionalInteger, optionalString } from '../control/validate.js';
import { invalidParameter, notFound, type PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { instanceForCaller } from '../instances/permissions.js';
import { findInstanceByUid } from '../instances/store.js';
import { collectPage, decodePageToken } from '../pagination.js';
import type { Queryable } from '../store/store.js';
import { alreadyExists, requireCreateCatalog, usableCatalogs } from './catalogs.js';
import { withInstanceDatabase } from './database-live.js';
import { alreadyExistsOnConflict } from './fields.js';
import { validateName } from './names.js';
import { catalogAccess, isDatabaseCatalog, loadCatalog } from './resolve.js';
import {
  type CatalogRow,
  deleteCatalogRow,
  findCatalog,
  insertCatalog,
  listDatabaseCatalogsOfInstance,
} from './store.js';

/**
 * Database catalogs (`/api/2.0/database/catalogs`): a Unity Catalog catalog
 * of type MANAGED_ONLINE_CATALOG that shows one Postgres database of a
 * database instance. Its schemas and tables are read live from Postgres.
 */

/** Postgres limits identifiers to 63 bytes. */
const MAX_DATABASE_NAME_BYTES = 63;

/** The SDK's DatabaseCatalog. */
export async function databaseCatalogView(db: Queryable, catalog: CatalogRow) {
  const instance = catalog.instance_uid ? await findInstanceByUid(db, catalog.instance_uid) : undefined;
  return {
    name: catalog.name,
    database_instance_name: instance?.name ?? '',
    database_name: catalog.database_name ?? '',
    uid: catalog.id,
  };
}

/** Postgres' templates are copied into every new database: never a catalog's. */
const TEMPLATE_DATABASES = ['template0', 'template1'];

function templateRefused(name: string): PierError {
  return invalidParameter(
    `Database '${name}' is a template database; a database catalog shows an ordinary database. Pick another database_name.`,
  );
}

function validateDatabaseName(value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    throw invalidParameter(
      `Field 'database_name' is required: the Postgres database the catalog shows (e.g. "databricks_postgres").`,
    );
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are not valid in a database name.
  if (Buffer.byteLength(value) > MAX_DATABASE_NAME_BYTES || /[\u0000-\u001f]/.test(value)) {
    throw invalidParameter(
      `database_name ${JSON.stringify(value.slice(0, 80))} is invalid: use at most ${MAX_DATABASE_NAME_BYTES} bytes and no control characters.`,
    );
  }
  if (TEMPLATE_DATABASES.includes(value)) throw templateRefused(value);
  return value;
}

/**
 * `POST /api/2.0/database/catalogs`. Needs what every catalog needs (CREATE
 * CATALOG on the metastore: a workspace admin) and CAN_USE on the instance,
 * which must be AVAILABLE. Template databases are refused. The catalog row
 * and the database check (or CREATE DATABASE) happen inside one store
 * transaction, so a failure records nothing.
 */
export async function createDatabaseCatalog(
  ctx: ControlContext,
  caller: IdentityRow,
  input: unknown,
): Promise<CatalogRow> {
  const body = asObject(input, 'The database catalog');
  const name = validateName(body.name, 'catalog');
  const instanceName = optionalString(body, 'database_instance_name');
  if (!instanceName)
    throw invalidParameter(`Field 'database_instance_name' is required: the database instance.`);
  const databaseName = validateDatabaseName(body.database_name);
  const createDatabase = optionalBoolean(body, 'create_database_if_not_exists') ?? false;

  requireCreateCatalog(caller);
  const instance = await instanceForCaller(ctx.store, caller, instanceName, 'CAN_USE');
  return ctx.store
    .transaction(async (tx) => {
      if (await findCatalog(tx, name)) throw alreadyExists(name);
      const catalog = await insertCatalog(tx, {
        id: randomUUID(),
        name,
        catalog_type: 'MANAGED_ONLINE_CATALOG',
        comment: null,
        properties: {},
        storage_root: null,
        owner: caller.user_name,
        instance_uid: instance.uid,
        database_name: databaseName,
      });
      await withInstanceDatabase(ctx, instance, 'postgres', async (client) => {
        const { rows } = await client.query<{ datistemplate: boolean }>(
          'SELECT datistemplate FROM pg_database WHERE datname = $1',
          [databaseName],
        );
        if (rows[0]?.datistemplate) throw templateRefused(databaseName);
        if (rows.length > 0) return;
        if (!createDatabase) {
          throw invalidParameter(
            `Database '${databaseName}' does not exist in instance '${instance.name}'. Create it first, or set create_database_if_not_exists to true.`,
          );
        }
        // Owned by databricks_superuser so the instance's users can create schemas and tables in it.
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(databaseName)} OWNER databricks_superuser`);
      });
      return catalog;
    })
    .catch(alreadyExistsOnConflict(alreadyExists(name).message));
}

async function loadDatabaseCatalog(db: Queryable, rawName: string): Promise<CatalogRow> {
  const name = validateName(rawName, 'catalog');
  const catalog = await findCatalog(db, name);
  if (!catalog || !isDatabaseCatalog(catalog)) throw notFound(`Database catalog '${name}' does not exist.`);
  return catalog;
}

export async function getDatabaseCatalog(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
): Promise<CatalogRow> {
  const catalog = await loadDatabaseCatalog(ctx.store, name);
  (await catalogAccess(ctx.store, caller, catalog)).require('USE_CATALOG', 0);
  return catalog;
}

/** `GET /api/2.0/database/instances/{instance}/catalogs`: needs CAN_USE on the instance; shows catalogs the caller can use. */
export async function listDatabaseCatalogs(
  ctx: ControlContext,
  caller: IdentityRow,
  instanceName: string,
  query: Record<string, string | undefined>,
): Promise<{ catalogs: CatalogRow[]; nextPageToken?: string }> {
  const instance = await instanceForCaller(ctx.store, caller, instanceName, 'CAN_USE');
  const size = optionalInteger(query, 'page_size') ?? 0;
  if (size < 0) throw invalidParameter(`page_size must be 0 or more, got ${size}.`);
  const page = await collectPage(
    { afterName: decodePageToken(query.page_token), limit: size === 0 ? 100 : Math.min(size, 100) },
    (after, limit) => listDatabaseCatalogsOfInstance(ctx.store, instance.uid, after, limit),
    usableCatalogs(ctx.store, caller),
  );
  return { catalogs: page.items, nextPageToken: page.nextPageToken };
}

/** `DELETE /api/2.0/database/catalogs/{name}`: owner or admin. The Postgres database is kept. */
export async function deleteDatabaseCatalog(
  ctx: ControlContext,
  caller: IdentityRow,
  name: string,
): Promise<void> {
  await ctx.store.transaction(async (tx) => {
    const catalog = await loadDatabaseCatalog(tx, name);
    const locked = await loadCatalog(tx, catalog.name, true);
    (await catalogAccess(tx, caller, locked)).requireOwnership(0, 'delete');
    await deleteCatalogRow(tx, locked.id);
  });
}
