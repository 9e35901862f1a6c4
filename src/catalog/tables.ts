import { randomUUID } from 'node:crypto';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalString } from '../control/validate.js';
import { invalidParameter, notFound, PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { collectPage, type Page, pageOf, parsePageRequest } from '../pagination.js';
import type { Queryable } from '../store/store.js';
import { findLiveSchema, listLiveTables, withCatalogDatabase } from './database-live.js';
import { findDatabaseBackedSchema } from './database-schemas-store.js';
import { describeDeltaTable, validateStorageLocation } from './delta-columns.js';
import { authorizeStorageLocation } from './external-locations.js';
import { lockStoragePaths } from './external-locations-store.js';
import { alreadyExistsOnConflict, optionalComment, optionalProperties, validatePrincipal } from './fields.js';
import { parseTableFullName, validateName } from './names.js';
import { postgresBackedLiveTables, withPipelines } from './postgres-tables.js';
import { listPostgresBackedTables } from './postgres-tables-store.js';
import { Access } from './privileges.js';
import {
  catalogSecurable,
  isDatabaseCatalog,
  liveSecurable,
  loadCatalog,
  loadStoredSchema,
  loadStoredTable,
  schemaSecurable,
  tableSecurable,
} from './resolve.js';
import {
  type CatalogRow,
  deleteTableRow,
  findOverlappingTable,
  findTable,
  insertTable,
  listTablesPage,
  type SchemaRow,
  type TableRow,
  updateTableOwner,
} from './store.js';
import type { LiveTable } from './views.js';

export interface TableResult {
  catalog: CatalogRow;
  schemaName: string;
  table: TableRow | LiveTable;
}

function alreadyExists(fullName: string): PierError {
  return new PierError('RESOURCE_ALREADY_EXISTS', `Table '${fullName}' already exists. Pick another name.`);
}

function liveOnly(catalog: CatalogRow, what: string): PierError {
  return invalidParameter(
    `Catalog '${catalog.name}' is a database catalog: its tables are the Postgres database's own. ${what} in Postgres instead.`,
  );
}

/**
 * `POST /unity-catalog/tables`: registers an EXTERNAL DELTA table at its
 * storage location. The columns are read from the Delta log (any `columns`
 * in the request are ignored, as the log is the truth). Needs USE_CATALOG,
 * USE_SCHEMA and CREATE_TABLE on the schema (or owning it).
 */
export async function createTable(
  ctx: ControlContext,
  caller: IdentityRow,
  input: unknown,
): Promise<TableResult> {
  const body = asObject(input, 'The table');
  const catalogName = validateName(body.catalog_name, 'catalog', 'catalog_name');
  const schemaName = validateName(body.schema_name, 'schema', 'schema_name');
  const name = validateName(body.name, 'table');
  const tableType = optionalString(body, 'table_type') ?? 'EXTERNAL';
  if (tableType !== 'EXTERNAL') {
    throw invalidParameter(
      `table_type '${tableType}' is not supported: Pier registers EXTERNAL Delta tables only.`,
    );
  }
  const format = optionalString(body, 'data_source_format') ?? 'DELTA';
  if (format !== 'DELTA') {
    throw invalidParameter(
      `data_source_format '${format}' is not supported: Pier registers DELTA tables only.`,
    );
  }
  const location = validateStorageLocation(body.storage_location);
  const comment = optionalComment(body) ?? null;
  const properties = optionalProperties(body) ?? {};
  const fullName = `${catalogName}.${schemaName}.${name}`;

  const catalog = await loadCatalog(ctx.store, catalogName);
  if (isDatabaseCatalog(catalog)) throw liveOnly(catalog, 'Create the table');
  const schema = await loadStoredSchema(ctx.store, catalog, schemaName);
  if (await findDatabaseBackedSchema(ctx.store, catalog.id, schema.name)) {
    throw invalidParameter(
      `Schema '${catalogName}.${schemaName}' shows a Postgres schema of a database instance: its tables are the Postgres schema's own. Register the Delta table in another schema.`,
    );
  }
  requireCreateTable(
    await Access.load(ctx.store, caller, [catalogSecurable(catalog), schemaSecurable(catalog, schema)]),
  );
  if (await findTable(ctx.store, schema.id, name)) throw alreadyExists(fullName);
  if ((await listPostgresBackedTables(ctx.store, catalogName, schemaName, name)).length > 0) {
    throw alreadyExists(fullName);
  }
  const { path, complete } = await authorizeStorageLocation(
    ctx.store,
    caller,
    location,
    'CREATE_EXTERNAL_TABLE',
  );
  // Another table's files are not even read; nor does a missing path inside one answer differently.
  await refuseOverlappingTable(ctx.store, caller, location, path, !complete);
  if (!complete) throw invalidParameter(`No Delta table at '${location}': the directory does not exist.`);
  // Reading the log is file I/O: done before the transaction, which only records the result.
  const delta = await describeDeltaTable(location, path);
  const table = await ctx.store
    .transaction(async (tx) => {
      await lockStoragePaths(tx);
      const locked = await loadStoredSchema(tx, catalog, schemaName, true);
      if (await findTable(tx, locked.id, name)) throw alreadyExists(fullName);
      // Again under the lock: the location may have gone, or another table arrived, meanwhile.
      const again = await authorizeStorageLocation(tx, caller, location, 'CREATE_EXTERNAL_TABLE');
      if (again.path !== path) {
        throw new PierError(
          'INVALID_STATE',
          `storage_location '${location}' changed while it was read; retry.`,
        );
      }
      await refuseOverlappingTable(tx, caller, location, path);
      return insertTable(tx, {
        id: randomUUID(),
        schema_id: locked.id,
        name,
        table_type: 'EXTERNAL',
        data_source_format: 'DELTA',
        storage_location: location,
        storage_path: path,
        columns: delta.columns,
        comment,
        properties: { ...properties, 'delta.lastCommitVersion': String(delta.version) },
        owner: caller.user_name,
      });
    })
    .catch(alreadyExistsOnConflict(alreadyExists(fullName).message));
  return { catalog, schemaName, table };
}

/**
 * Two tables never share files: a table at, inside or around another's
 * directory could read it without that table's SELECT. Only admins learn
 * which table is in the way.
 */
async function refuseOverlappingTable(
  db: Queryable,
  caller: IdentityRow,
  location: string,
  path: string,
  containingOnly = false,
): Promise<void> {
  const other = await findOverlappingTable(db, path, containingOnly);
  if (!other) return;
  throw invalidParameter(
    `storage_location '${location}' overlaps the location of ${caller.is_admin ? `table '${other}'` : 'a table already registered'}; tables cannot share or nest directories.`,
  );
}

function requireCreateTable(access: Access): void {
  access.require('USE_CATALOG', 0);
  if (access.ownsUpTo(1)) return;
  access.require('USE_SCHEMA', 1);
  access.require('CREATE_TABLE', 1);
}

/** `GET /unity-catalog/tables/{full_name}`: USE_CATALOG, USE_SCHEMA and SELECT (or ownership). */
export async function getTable(
  ctx: ControlContext,
  caller: IdentityRow,
  fullName: string,
): Promise<TableResult> {
  const names = parseTableFullName(fullName);
  const catalog = await loadCatalog(ctx.store, names.catalog);
  if (isDatabaseCatalog(catalog)) {
    const access = await Access.load(ctx.store, caller, [
      catalogSecurable(catalog),
      liveSecurable('SCHEMA', catalog, `${catalog.name}.${names.schema}`),
      liveSecurable('TABLE', catalog, `${catalog.name}.${names.schema}.${names.table}`),
    ]);
    access.requireVisible();
    const table = await withCatalogDatabase(ctx, caller, catalog, async (client) => {
      if (!(await findLiveSchema(client, names.schema))) {
        throw notFound(`Schema '${catalog.name}.${names.schema}' does not exist.`);
      }
      return (await listLiveTables(client, names.schema, { name: names.table }))[0];
    });
    if (!table) throw notFound(`Table '${catalog.name}.${names.schema}.${names.table}' does not exist.`);
    const [shown] = await withPipelines(ctx.store, catalog, names.schema, [
      { ...table, name: table.name.toLowerCase() },
    ]);
    return { catalog, schemaName: names.schema, table: shown };
  }
  const schema = await loadStoredSchema(ctx.store, catalog, names.schema);
  const stored = await findTable(ctx.store, schema.id, names.table);
  if (stored) {
    (await Access.load(ctx.store, caller, storedPath(catalog, schema, stored))).requireVisible();
    return { catalog, schemaName: schema.name, table: stored };
  }
  const missing = () => notFound(`Table '${catalog.name}.${schema.name}.${names.table}' does not exist.`);
  const livePath = [
    catalogSecurable(catalog),
    schemaSecurable(catalog, schema),
    liveSecurable('TABLE', catalog, `${catalog.name}.${schema.name}.${names.table}`),
  ];
  const home = await findDatabaseBackedSchema(ctx.store, catalog.id, schema.name);
  if (home) {
    // A database-backed schema shows its Postgres schema live, as a database catalog does.
    (await Access.load(ctx.store, caller, livePath)).requireVisible();
    const table = await withCatalogDatabase(ctx, caller, { ...catalog, ...home }, async (client) => {
      return (await listLiveTables(client, schema.name, { name: names.table }))[0];
    });
    if (!table) throw missing();
    const [shown] = await withPipelines(ctx.store, catalog, schema.name, [
      { ...table, name: table.name.toLowerCase() },
    ]);
    return { catalog, schemaName: schema.name, table: shown };
  }
  const rows = await listPostgresBackedTables(ctx.store, catalog.name, schema.name, names.table);
  if (rows.length === 0) throw missing();
  (await Access.load(ctx.store, caller, livePath)).requireVisible();
  const [table] = await postgresBackedLiveTables(ctx, rows);
  return { catalog, schemaName: schema.name, table };
}

/** `GET /unity-catalog/tables/{full_name}/exists`: whether the caller can see such a table. */
export async function tableExists(
  ctx: ControlContext,
  caller: IdentityRow,
  fullName: string,
): Promise<boolean> {
  try {
    await getTable(ctx, caller, fullName);
    return true;
  } catch (error) {
    if ((error as PierError).kind === 'RESOURCE_DOES_NOT_EXIST') return false;
    throw error;
  }
}

/** `GET /unity-catalog/tables?catalog_name=&schema_name=`: the tables the caller may see. */
export async function listTables(
  ctx: ControlContext,
  caller: IdentityRow,
  query: Record<string, string | undefined>,
): Promise<{ catalog: CatalogRow; schemaName: string; page: Page<TableRow | LiveTable> }> {
  const catalogName = validateName(query.catalog_name, 'catalog', 'catalog_name');
  const schemaName = validateName(query.schema_name, 'schema', 'schema_name');
  const request = parsePageRequest(query);
  const catalog = await loadCatalog(ctx.store, catalogName);
  if (isDatabaseCatalog(catalog)) {
    const access = await Access.load(ctx.store, caller, [
      catalogSecurable(catalog),
      liveSecurable('SCHEMA', catalog, `${catalog.name}.${schemaName}`),
      liveSecurable('TABLE', catalog, `${catalog.name}.${schemaName}`),
    ]);
    access.require('USE_CATALOG', 0);
    if (!access.ownsUpTo(1)) access.require('USE_SCHEMA', 1);
    const tables = await withCatalogDatabase(ctx, caller, catalog, async (client) => {
      if (!(await findLiveSchema(client, schemaName)))
        throw notFound(`Schema '${catalog.name}.${schemaName}' does not exist.`);
      if (!access.canSee()) return [];
      // One row past the page tells pageOf whether another page follows.
      return listLiveTables(client, schemaName, { after: request.afterName, limit: request.limit + 1 });
    });
    const visible = await withPipelines(
      ctx.store,
      catalog,
      schemaName,
      tables.map((t) => ({ ...t, name: t.name.toLowerCase() })),
    );
    return { catalog, schemaName, page: pageOf(request, visible) };
  }
  const schema = await loadStoredSchema(ctx.store, catalog, schemaName);
  const access = await Access.load(ctx.store, caller, [
    catalogSecurable(catalog),
    schemaSecurable(catalog, schema),
  ]);
  access.require('USE_CATALOG', 0);
  if (!access.ownsUpTo(1)) access.require('USE_SCHEMA', 1);
  const home = await findDatabaseBackedSchema(ctx.store, catalog.id, schema.name);
  if (home) {
    // A database-backed schema shows its Postgres schema live, as a database catalog does.
    const tables = await withCatalogDatabase(ctx, caller, { ...catalog, ...home }, async (client) =>
      listLiveTables(client, schema.name, { after: request.afterName, limit: request.limit + 1 }),
    );
    const visible = await withPipelines(
      ctx.store,
      catalog,
      schema.name,
      tables.map((t) => ({ ...t, name: t.name.toLowerCase() })),
    );
    return { catalog, schemaName, page: pageOf(request, visible) };
  }
  // Synced and registered database tables named into this schema, beside its Delta tables.
  const postgres = await postgresBackedLiveTables(
    ctx,
    await listPostgresBackedTables(ctx.store, catalog.name, schema.name),
  );
  const page = await collectPage<TableRow | LiveTable>(
    request,
    async (after, limit) =>
      [
        ...(await listTablesPage(ctx.store, schema.id, after, limit)),
        ...postgres.filter((t) => t.name > after),
      ]
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        .slice(0, limit),
    (rows) =>
      Access.filter(
        ctx.store,
        caller,
        rows,
        (table) =>
          'id' in table
            ? storedPath(catalog, schema, table)
            : [
                catalogSecurable(catalog),
                schemaSecurable(catalog, schema),
                liveSecurable('TABLE', catalog, `${catalog.name}.${schema.name}.${table.name}`),
              ],
        (a) => a.canSee(),
      ),
  );
  return { catalog, schemaName, page };
}

/** `PATCH /unity-catalog/tables/{full_name}`: only `owner` changes (as in UC). */
export async function updateTable(
  ctx: ControlContext,
  caller: IdentityRow,
  fullName: string,
  input: unknown,
): Promise<TableResult> {
  const names = parseTableFullName(fullName);
  const body = asObject(input, 'The table update');
  if (body.owner === undefined || body.owner === null) {
    throw invalidParameter(`Field 'owner' is required: it is the only table field that can be updated.`);
  }
  return ctx.store.transaction(async (tx) => {
    const catalog = await loadCatalog(tx, names.catalog);
    if (isDatabaseCatalog(catalog)) throw liveOnly(catalog, 'Change the table owner');
    const { schema, table } = await loadStoredPath(tx, catalog, names.schema, names.table, true);
    requireTableOwnership(await Access.load(tx, caller, storedPath(catalog, schema, table)), 'update');
    const owner = await validatePrincipal(tx, body.owner, 'owner');
    return {
      catalog,
      schemaName: schema.name,
      table: await updateTableOwner(tx, table.id, owner, caller.user_name),
    };
  });
}

/** `DELETE /unity-catalog/tables/{full_name}`: unregisters the table; its files are left alone (EXTERNAL). */
export async function deleteTable(ctx: ControlContext, caller: IdentityRow, fullName: string): Promise<void> {
  const names = parseTableFullName(fullName);
  await ctx.store.transaction(async (tx) => {
    const catalog = await loadCatalog(tx, names.catalog);
    if (isDatabaseCatalog(catalog)) throw liveOnly(catalog, 'Drop the table');
    const { schema, table } = await loadStoredPath(tx, catalog, names.schema, names.table, true);
    requireTableOwnership(await Access.load(tx, caller, storedPath(catalog, schema, table)), 'delete');
    await deleteTableRow(tx, table.id);
  });
}

/** UC: the owner of the catalog or schema, or the table's owner with USE_CATALOG and USE_SCHEMA. */
function requireTableOwnership(access: Access, what: string): void {
  if (access.ownsUpTo(0)) return;
  access.require('USE_CATALOG', 0);
  if (access.ownsUpTo(1)) return;
  access.require('USE_SCHEMA', 1);
  access.requireOwnership(2, what);
}

async function loadStoredPath(
  db: Queryable,
  catalog: CatalogRow,
  schemaName: string,
  tableName: string,
  lock = false,
): Promise<{ schema: SchemaRow; table: TableRow }> {
  const schema = await loadStoredSchema(db, catalog, schemaName);
  return { schema, table: await loadStoredTable(db, catalog, schema, tableName, lock) };
}

function storedPath(catalog: CatalogRow, schema: SchemaRow, table: TableRow) {
  return [
    catalogSecurable(catalog),
    schemaSecurable(catalog, schema),
    tableSecurable(catalog, schema, table),
  ];
}
