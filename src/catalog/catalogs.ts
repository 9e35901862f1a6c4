import { randomUUID } from 'node:crypto';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalString } from '../control/validate.js';
import { PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { collectPage, type Page, parsePageRequest } from '../pagination.js';
import type { Queryable } from '../store/store.js';
import {
  alreadyExistsOnConflict,
  optionalComment,
  optionalProperties,
  parseForce,
  rejectUnsupported,
  validatePrincipal,
} from './fields.js';
import { validateName } from './names.js';
import { Access } from './privileges.js';
import { catalogAccess, catalogSecurable, isDatabaseCatalog, loadCatalog } from './resolve.js';
import {
  type CatalogRow,
  countSchemas,
  deleteCatalogRow,
  findCatalog,
  insertCatalog,
  listCatalogsPage,
  updateCatalogRow,
} from './store.js';

/** Only the metastore admin (a workspace admin) creates catalogs, as in UC without CREATE_CATALOG grants. */
export function requireCreateCatalog(caller: IdentityRow): void {
  if (!caller.is_admin) {
    throw new PierError(
      'PERMISSION_DENIED',
      `User ${caller.user_name} does not have CREATE CATALOG on Metastore. Ask a workspace admin to create the catalog.`,
    );
  }
}

/** `POST /unity-catalog/catalogs`: a standard catalog owned by its creator. */
export async function createCatalog(
  ctx: ControlContext,
  caller: IdentityRow,
  input: unknown,
): Promise<CatalogRow> {
  const body = asObject(input, 'The catalog');
  const name = validateName(body.name, 'catalog');
  rejectUnsupported(body, ['connection_name', 'provider_name', 'share_name'], 'catalogs');
  const comment = optionalComment(body) ?? null;
  const properties = optionalProperties(body) ?? {};
  const storageRoot = optionalString(body, 'storage_root') ?? null;
  requireCreateCatalog(caller);
  return ctx.store
    .transaction(async (tx) => {
      if (await findCatalog(tx, name)) throw alreadyExists(name);
      return insertCatalog(tx, {
        id: randomUUID(),
        name,
        catalog_type: 'MANAGED_CATALOG',
        comment,
        properties,
        storage_root: storageRoot,
        owner: caller.user_name,
      });
    })
    .catch(alreadyExistsOnConflict(alreadyExists(name).message));
}

export function alreadyExists(name: string): PierError {
  return new PierError('RESOURCE_ALREADY_EXISTS', `Catalog '${name}' already exists. Pick another name.`);
}

export async function getCatalog(
  ctx: ControlContext,
  caller: IdentityRow,
  rawName: string,
): Promise<CatalogRow> {
  const catalog = await loadCatalog(ctx.store, validateName(rawName, 'catalog'));
  (await catalogAccess(ctx.store, caller, catalog)).require('USE_CATALOG', 0);
  return catalog;
}

/** A page filter: the catalogs the caller owns or holds USE_CATALOG on, grants read once per page. */
export function usableCatalogs(db: Queryable, caller: IdentityRow) {
  return (rows: CatalogRow[]) =>
    Access.filter(
      db,
      caller,
      rows,
      (row) => [catalogSecurable(row)],
      (a) => a.has('USE_CATALOG', 0),
    );
}

/** Catalogs the caller owns or holds USE_CATALOG on (all of them for an admin). */
export async function listCatalogs(
  ctx: ControlContext,
  caller: IdentityRow,
  query: Record<string, string | undefined>,
): Promise<Page<CatalogRow>> {
  const request = parsePageRequest(query);
  return collectPage(
    request,
    (after, limit) => listCatalogsPage(ctx.store, after, limit),
    usableCatalogs(ctx.store, caller),
  );
}

/**
 * `PATCH /unity-catalog/catalogs/{name}`: comment, properties, owner,
 * new_name. Only the owner or an admin.
 */
export async function updateCatalog(
  ctx: ControlContext,
  caller: IdentityRow,
  rawName: string,
  input: unknown,
): Promise<CatalogRow> {
  const name = validateName(rawName, 'catalog');
  const body = asObject(input, 'The catalog update');
  rejectUnsupported(body, ['enable_predictive_optimization', 'isolation_mode', 'options'], 'catalog updates');
  const newName =
    body.new_name === undefined || body.new_name === null
      ? undefined
      : validateName(body.new_name, 'catalog', 'new_name');
  const comment = optionalComment(body);
  const properties = optionalProperties(body);
  return ctx.store
    .transaction(async (tx) => {
      const catalog = await loadCatalog(tx, name, true);
      (await catalogAccess(tx, caller, catalog)).requireOwnership(0, 'update');
      const owner =
        body.owner === undefined || body.owner === null
          ? catalog.owner
          : await validatePrincipal(tx, body.owner, 'owner');
      if (newName && newName !== name && (await findCatalog(tx, newName))) throw alreadyExists(newName);
      return updateCatalogRow(
        tx,
        catalog.id,
        {
          name: newName ?? catalog.name,
          comment: comment ?? catalog.comment,
          properties: properties ?? catalog.properties,
          owner,
        },
        caller.user_name,
      );
    })
    .catch(alreadyExistsOnConflict(alreadyExists(newName ?? name).message));
}

/**
 * `DELETE /unity-catalog/catalogs/{name}`: owner or admin; a catalog with
 * schemas needs force=true. A database catalog's Postgres database is kept.
 */
export async function deleteCatalog(
  ctx: ControlContext,
  caller: IdentityRow,
  rawName: string,
  query: { force?: string },
): Promise<void> {
  const name = validateName(rawName, 'catalog');
  const force = parseForce(query.force);
  await ctx.store.transaction(async (tx) => {
    const catalog = await loadCatalog(tx, name, true);
    (await catalogAccess(tx, caller, catalog)).requireOwnership(0, 'delete');
    if (!isDatabaseCatalog(catalog) && !force) {
      const schemas = await countSchemas(tx, catalog.id);
      if (schemas > 0) {
        throw new PierError(
          'INVALID_STATE',
          `Catalog '${name}' is not empty: it has ${schemas} schema(s). Delete them first, or pass force=true to delete everything in it.`,
        );
      }
    }
    await deleteCatalogRow(tx, catalog.id);
  });
}
