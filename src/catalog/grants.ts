import type { ControlContext } from '../control/context.js';
import { asObject, describe } from '../control/validate.js';
import { invalidParameter, notFound } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import type { Queryable } from '../store/store.js';
import { externalLocationSecurable } from './external-locations.js';
import { findExternalLocation } from './external-locations-store.js';
import { validatePrincipal } from './fields.js';
import {
  deleteGrant,
  type GrantRow,
  type GrantSecurableKind,
  insertGrant,
  listGrants,
} from './grants-store.js';
import { parseSchemaFullName, parseTableFullName, validateName } from './names.js';
import {
  Access,
  APPLICABLE,
  label,
  PRIVILEGES,
  type Privilege,
  type Securable,
  type SecurableType,
} from './privileges.js';
import {
  catalogSecurable,
  isDatabaseCatalog,
  loadCatalog,
  loadStoredSchema,
  loadStoredTable,
  schemaSecurable,
  tableSecurable,
} from './resolve.js';

/**
 * `/unity-catalog/permissions/{securable_type}/{full_name}` (direct grants,
 * GET and PATCH) and `/unity-catalog/effective-permissions/…` (grants on the
 * object and inherited from its parents). The services return grant rows;
 * `views.ts` groups them by principal into UC's `privilege_assignments`.
 */

const KINDS: Record<SecurableType, GrantSecurableKind> = {
  CATALOG: 'catalog',
  SCHEMA: 'schema',
  TABLE: 'table',
  EXTERNAL_LOCATION: 'external_location',
};

function parseSecurableType(value: string): SecurableType {
  const type = value.toUpperCase();
  if (Object.hasOwn(KINDS, type)) return type as SecurableType;
  throw invalidParameter(
    `Securable type ${describe(value)} is not supported; use catalog, schema, table or external_location.`,
  );
}

/** The path from the catalog down to the securable (the securable last); an external location alone. */
async function securablePath(db: Queryable, type: SecurableType, fullName: string): Promise<Securable[]> {
  if (type === 'EXTERNAL_LOCATION') {
    const name = validateName(fullName, 'external location');
    const location = await findExternalLocation(db, name);
    if (!location) throw notFound(`External location '${name}' does not exist.`);
    return [externalLocationSecurable(location)];
  }
  const names: { catalog: string; schema?: string; table?: string } =
    type === 'CATALOG'
      ? { catalog: validateName(fullName, 'catalog') }
      : type === 'SCHEMA'
        ? parseSchemaFullName(fullName)
        : parseTableFullName(fullName);
  const catalog = await loadCatalog(db, names.catalog);
  if (type === 'CATALOG') return [catalogSecurable(catalog)];
  if (isDatabaseCatalog(catalog)) {
    throw invalidParameter(
      `'${fullName}' is in database catalog '${catalog.name}', whose schemas and tables are read live from Postgres; grant privileges on the catalog instead.`,
    );
  }
  const schema = await loadStoredSchema(db, catalog, names.schema!);
  if (type === 'SCHEMA') return [catalogSecurable(catalog), schemaSecurable(catalog, schema)];
  const table = await loadStoredTable(db, catalog, schema, names.table!);
  return [
    catalogSecurable(catalog),
    schemaSecurable(catalog, schema),
    tableSecurable(catalog, schema, table),
  ];
}

/** Reading grants needs the object to be visible to the caller. */
async function readablePath(db: Queryable, caller: IdentityRow, type: string, fullName: string) {
  const path = await securablePath(db, parseSecurableType(type), fullName);
  const access = await Access.load(db, caller, path);
  if (path[0].type === 'EXTERNAL_LOCATION') {
    if (!access.holdsAny(0)) access.requireOwnership(0, 'read the permissions of');
  } else if (!access.ownsUpTo(path.length - 1)) access.requireVisible();
  return path;
}

/** The direct grants on the securable, in (principal, privilege) order; optionally one principal's. */
export async function getPermissions(
  ctx: ControlContext,
  caller: IdentityRow,
  type: string,
  fullName: string,
  principal?: string,
): Promise<GrantRow[]> {
  const path = await readablePath(ctx.store, caller, type, fullName);
  return listGrants(ctx.store, [path[path.length - 1].id], principal);
}

interface Change {
  principal: string;
  add: Privilege[];
  remove: Privilege[];
}

function parsePrivileges(value: unknown, field: string, type: SecurableType, fullName: string): Privilege[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalidParameter(`Field '${field}' must be an array of privileges.`);
  return value.map((item) => {
    const privilege = typeof item === 'string' ? item.toUpperCase().replace(/ /g, '_') : item;
    if (!PRIVILEGES.includes(privilege as Privilege)) {
      throw invalidParameter(
        `Privilege ${describe(item)} is not supported; use one of ${PRIVILEGES.join(', ')}.`,
      );
    }
    if (!APPLICABLE[type].includes(privilege as Privilege)) {
      throw invalidParameter(
        `Privilege ${privilege} cannot be granted on ${label(type)} '${fullName}'; use one of ${APPLICABLE[type].join(', ')}.`,
      );
    }
    return privilege as Privilege;
  });
}

/**
 * `PATCH /permissions/{type}/{full_name}` with `changes: [{principal, add, remove}]`.
 * Only owners (of the object or a parent) and admins. All changes apply in
 * one transaction, or none does. Returns the grants on the securable afterwards.
 */
export async function updatePermissions(
  ctx: ControlContext,
  caller: IdentityRow,
  rawType: string,
  fullName: string,
  input: unknown,
): Promise<GrantRow[]> {
  const type = parseSecurableType(rawType);
  const body = asObject(input, 'The request body');
  if (!Array.isArray(body.changes)) {
    throw invalidParameter(
      `Field 'changes' must be an array of {"principal": …, "add": […], "remove": […]}.`,
    );
  }
  return ctx.store.transaction(async (tx) => {
    const path = await securablePath(tx, type, fullName);
    const securable = path[path.length - 1];
    (await Access.load(tx, caller, path)).requireOwnership(path.length - 1, 'change the permissions of');
    const changes: Change[] = [];
    for (const item of body.changes as unknown[]) {
      const change = asObject(item, 'Each change');
      changes.push({
        principal: await validatePrincipal(tx, change.principal, 'principal'),
        add: parsePrivileges(change.add, 'add', type, securable.fullName),
        remove: parsePrivileges(change.remove, 'remove', type, securable.fullName),
      });
    }
    for (const change of changes) {
      for (const privilege of change.remove) await deleteGrant(tx, securable.id, change.principal, privilege);
      for (const privilege of change.add) {
        await insertGrant(tx, KINDS[type], securable.id, change.principal, privilege);
      }
    }
    return listGrants(tx, [securable.id]);
  });
}

/** A grant that reaches a securable: made on it, or on a parent it inherits from. */
export interface EffectiveGrant {
  grant: GrantRow;
  /** The catalog or schema the grant was made on; absent when made on the securable itself. */
  inheritedFrom?: Securable;
}

/**
 * Effective privileges: direct grants plus those inherited from the catalog
 * and schema, in (principal, privilege) order. Privileges that mean nothing on
 * the securable's type (CREATE_SCHEMA on a table) are left out.
 */
export async function getEffectivePermissions(
  ctx: ControlContext,
  caller: IdentityRow,
  rawType: string,
  fullName: string,
  principal?: string,
): Promise<EffectiveGrant[]> {
  const path = await readablePath(ctx.store, caller, rawType, fullName);
  const target = path[path.length - 1];
  const byId = new Map(path.map((s) => [s.id, s]));
  const grants = await listGrants(
    ctx.store,
    path.map((s) => s.id),
    principal,
  );
  return grants
    .filter((grant) => APPLICABLE[target.type].includes(grant.privilege as Privilege))
    .map((grant) => {
      const from = byId.get(grant.securable_id)!;
      return from === target ? { grant } : { grant, inheritedFrom: from };
    });
}
