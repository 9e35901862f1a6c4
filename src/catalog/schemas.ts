import { randomUUID } from 'node:crypto';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalString } from '../control/validate.js';
import { invalidParameter, notFound, PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { collectPage, type Page, pageOf, parsePageRequest } from '../pagination.js';
import { createLiveSchema, findLiveSchema, listLiveSchemas, withCatalogDatabase } from './database-live.js';
import { createDatabaseBackedSchema } from './database-schemas.js';
import {
  alreadyExistsOnConflict,
  optionalComment,
  optionalProperties,
  parseForce,
  rejectUnsupported,
  validatePrincipal,
} from './fields.js';
import { parseSchemaFullName, validateName } from './names.js';
import { Access } from './privileges.js';
import {
  catalogAccess,
  catalogSecurable,
  isDatabaseCatalog,
  liveSecurable,
  loadCatalog,
  loadStoredSchema,
  schemaSecurable,
} from './resolve.js';
import {
  type CatalogRow,
  countTablesInSchema,
  deleteSchemaRow,
  findSchema,
  insertSchema,
  listSchemasPage,
  type SchemaRow,
  updateSchemaRow,
} from './store.js';
import type { LiveSchema } from './views.js';

export interface SchemaResult {
  catalog: CatalogRow;
  schema: SchemaRow | LiveSchema;
}

function alreadyExists(catalog: string, schema: string): PierError {
  return new PierError(
    'RESOURCE_ALREADY_EXISTS',
    `Schema '${catalog}.${schema}' already exists. Pick another name.`,
  );
}

function liveOnly(catalog: CatalogRow, what: string): PierError {
  return invalidParameter(
    `Catalog '${catalog.name}' is a database catalog: its schemas are the Postgres database's own. ${what} in Postgres instead.`,
  );
}

/**
 * `POST /unity-catalog/schemas`. Needs USE_CATALOG and CREATE_SCHEMA on the
 * catalog (or owning it). In a database catalog this creates the schema in
 * Postgres.
 */
export async function createSchema(
  ctx: ControlContext,
  caller: IdentityRow,
  input: unknown,
): Promise<SchemaResult> {
  const body = asObject(input, 'The schema');
  const catalogName = validateName(body.catalog_name, 'catalog', 'catalog_name');
  const name = validateName(body.name, 'schema');
  const comment = optionalComment(body) ?? null;
  const properties = optionalProperties(body) ?? {};
  rejectUnsupported(body, ['storage_root'], 'schemas');

  const catalog = await loadCatalog(ctx.store, catalogName);
  const access = await catalogAccess(ctx.store, caller, catalog);
  access.require('USE_CATALOG', 0);
  access.require('CREATE_SCHEMA', 0);
  const instanceName = optionalString(body, 'database_instance_name');
  if (instanceName && !isDatabaseCatalog(catalog)) {
    const databaseName = optionalString(body, 'database_name') ?? 'databricks_postgres';
    const fields = { name, instanceName, databaseName, comment, properties };
    return { catalog, schema: await createDatabaseBackedSchema(ctx, caller, catalog, fields) };
  }
  if (isDatabaseCatalog(catalog)) {
    const schema = await withCatalogDatabase(ctx, caller, catalog, async (client) => {
      if (await findLiveSchema(client, name)) throw alreadyExists(catalog.name, name);
      await createLiveSchema(client, name);
      return findLiveSchema(client, name);
    });
    return { catalog, schema: schema! };
  }
  const schema = await ctx.store
    .transaction(async (tx) => {
      const locked = await loadCatalog(tx, catalogName, true);
      if (await findSchema(tx, locked.id, name)) throw alreadyExists(catalog.name, name);
      return insertSchema(tx, {
        id: randomUUID(),
        catalog_id: locked.id,
        name,
        comment,
        properties,
        owner: caller.user_name,
      });
    })
    .catch(alreadyExistsOnConflict(alreadyExists(catalog.name, name).message));
  return { catalog, schema };
}

/** `GET /unity-catalog/schemas/{full_name}`: USE_CATALOG, and USE_SCHEMA or ownership. */
export async function getSchema(
  ctx: ControlContext,
  caller: IdentityRow,
  fullName: string,
): Promise<SchemaResult> {
  const names = parseSchemaFullName(fullName);
  const catalog = await loadCatalog(ctx.store, names.catalog);
  if (isDatabaseCatalog(catalog)) {
    const access = await Access.load(ctx.store, caller, [
      catalogSecurable(catalog),
      liveSecurable('SCHEMA', catalog, `${catalog.name}.${names.schema}`),
    ]);
    access.requireVisible();
    const schema = await withCatalogDatabase(ctx, caller, catalog, (client) =>
      findLiveSchema(client, names.schema),
    );
    if (!schema) throw notFound(`Schema '${catalog.name}.${names.schema}' does not exist.`);
    return { catalog, schema };
  }
  const schema = await loadStoredSchema(ctx.store, catalog, names.schema);
  const access = await Access.load(ctx.store, caller, [
    catalogSecurable(catalog),
    schemaSecurable(catalog, schema),
  ]);
  access.requireVisible();
  return { catalog, schema };
}

/** `GET /unity-catalog/schemas?catalog_name=`: the schemas the caller may see. */
export async function listSchemas(
  ctx: ControlContext,
  caller: IdentityRow,
  query: Record<string, string | undefined>,
): Promise<{ catalog: CatalogRow; page: Page<SchemaRow | LiveSchema> }> {
  const catalogName = validateName(query.catalog_name, 'catalog', 'catalog_name');
  const request = parsePageRequest(query);
  const catalog = await loadCatalog(ctx.store, catalogName);
  const access = await catalogAccess(ctx.store, caller, catalog);
  access.require('USE_CATALOG', 0);
  if (isDatabaseCatalog(catalog)) {
    const live = await Access.load(ctx.store, caller, [
      catalogSecurable(catalog),
      liveSecurable('SCHEMA', catalog, catalog.name),
    ]);
    const all = await withCatalogDatabase(ctx, caller, catalog, listLiveSchemas);
    const visible = live.canSee() ? all.map((s) => ({ ...s, name: s.name.toLowerCase() })) : [];
    return { catalog, page: pageOf(request, visible) };
  }
  const page = await collectPage<SchemaRow>(
    request,
    (after, limit) => listSchemasPage(ctx.store, catalog.id, after, limit),
    (rows) =>
      Access.filter(
        ctx.store,
        caller,
        rows,
        (schema) => [catalogSecurable(catalog), schemaSecurable(catalog, schema)],
        (a) => a.canSee(),
      ),
  );
  return { catalog, page };
}

/** `PATCH /unity-catalog/schemas/{full_name}`: comment, properties, owner, new_name; owners and admins. */
export async function updateSchema(
  ctx: ControlContext,
  caller: IdentityRow,
  fullName: string,
  input: unknown,
): Promise<SchemaResult> {
  const names = parseSchemaFullName(fullName);
  const body = asObject(input, 'The schema update');
  rejectUnsupported(body, ['enable_predictive_optimization'], 'schema updates');
  const newName =
    body.new_name === undefined || body.new_name === null
      ? undefined
      : validateName(body.new_name, 'schema', 'new_name');
  const comment = optionalComment(body);
  const properties = optionalProperties(body);
  return ctx.store
    .transaction(async (tx) => {
      const catalog = await loadCatalog(tx, names.catalog);
      if (isDatabaseCatalog(catalog)) throw liveOnly(catalog, 'Change the schema');
      const schema = await loadStoredSchema(tx, catalog, names.schema, true);
      const access = await Access.load(tx, caller, [
        catalogSecurable(catalog),
        schemaSecurable(catalog, schema),
      ]);
      access.require('USE_CATALOG', 0);
      access.requireOwnership(1, 'update');
      const owner =
        body.owner === undefined || body.owner === null
          ? schema.owner
          : await validatePrincipal(tx, body.owner, 'owner');
      if (newName && newName !== schema.name && (await findSchema(tx, catalog.id, newName))) {
        throw alreadyExists(catalog.name, newName);
      }
      const updated = await updateSchemaRow(
        tx,
        schema.id,
        {
          name: newName ?? schema.name,
          comment: comment ?? schema.comment,
          properties: properties ?? schema.properties,
          owner,
        },
        caller.user_name,
      );
      return { catalog, schema: updated };
    })
    .catch(alreadyExistsOnConflict(alreadyExists(names.catalog, newName ?? names.schema).message));
}

/** `DELETE /unity-catalog/schemas/{full_name}`: owners and admins; a schema with tables needs force=true. */
export async function deleteSchema(
  ctx: ControlContext,
  caller: IdentityRow,
  fullName: string,
  query: { force?: string },
): Promise<void> {
  const names = parseSchemaFullName(fullName);
  const force = parseForce(query.force);
  await ctx.store.transaction(async (tx) => {
    const catalog = await loadCatalog(tx, names.catalog);
    if (isDatabaseCatalog(catalog)) throw liveOnly(catalog, 'Drop the schema');
    const schema = await loadStoredSchema(tx, catalog, names.schema, true);
    const access = await Access.load(tx, caller, [
      catalogSecurable(catalog),
      schemaSecurable(catalog, schema),
    ]);
    access.require('USE_CATALOG', 0);
    access.requireOwnership(1, 'delete');
    if (!force) {
      const tables = await countTablesInSchema(tx, schema.id);
      if (tables > 0) {
        throw new PierError(
          'INVALID_STATE',
          `Schema '${catalog.name}.${schema.name}' is not empty: it has ${tables} table(s). Delete them first, or pass force=true.`,
        );
      }
    }
    await deleteSchemaRow(tx, schema.id);
  });
}
