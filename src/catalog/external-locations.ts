import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalBoolean, optionalString } from '../control/validate.js';
import { invalidParameter, notFound, PierError } from '../errors.js';
import type { IdentityRow } from '../identities/store.js';
import { collectPage, type Page, parsePageRequest } from '../pagination.js';
import type { Queryable } from '../store/store.js';
import {
  deleteExternalLocationRow,
  type ExternalLocationRow,
  findExternalLocation,
  findOverlappingLocation,
  insertExternalLocation,
  listAllExternalLocations,
  listExternalLocationsPage,
  lockStoragePaths,
  updateExternalLocationRow,
} from './external-locations-store.js';
import {
  alreadyExistsOnConflict,
  optionalComment,
  parseForce,
  rejectUnsupported,
  validatePrincipal,
} from './fields.js';
import { validateName } from './names.js';
import { Access, type Privilege, type Securable } from './privileges.js';
import { fileUrl, isWithin, localPath, resolveOnDisk } from './storage-paths.js';
import { countTablesUnder } from './store.js';

/**
 * Unity Catalog external locations (`/api/2.1/unity-catalog/external-locations`):
 * the directories under which EXTERNAL tables may be registered. Admins make
 * them; their owners grant CREATE_EXTERNAL_TABLE and READ_FILES on them. A
 * storage location is usable only when its realpath lies inside a location
 * the caller holds the privilege on.
 */

export function externalLocationSecurable(location: ExternalLocationRow): Securable {
  return { type: 'EXTERNAL_LOCATION', id: location.id, fullName: location.name, owner: location.owner };
}

/** Only the metastore admin (a workspace admin) creates external locations. */
function requireCreateExternalLocation(caller: IdentityRow): void {
  if (!caller.is_admin) {
    throw new PierError(
      'PERMISSION_DENIED',
      `User ${caller.user_name} does not have CREATE EXTERNAL LOCATION on Metastore. Ask a workspace admin to create the external location.`,
    );
  }
}

function alreadyExists(name: string): PierError {
  return new PierError(
    'RESOURCE_ALREADY_EXISTS',
    `External location '${name}' already exists. Pick another name.`,
  );
}

/** The url of a new or moved location: an existing directory other than `/`, and its realpath. */
async function locationDirectory(value: unknown): Promise<{ url: string; path: string }> {
  if (typeof value !== 'string' || value === '') {
    throw invalidParameter(`Field 'url' is required: the directory, as file:///absolute/path.`);
  }
  const lexical = localPath(value, 'url');
  const { real, complete } = await resolveOnDisk(lexical);
  if (!complete || !(await fs.stat(real)).isDirectory()) {
    throw invalidParameter(`url '${value}' is not an existing directory. Create it first.`);
  }
  if (real === '/') {
    throw invalidParameter(`url '${value}' is the file system root; name a directory below it.`);
  }
  return { url: fileUrl(lexical), path: real };
}

/** No two locations overlap (as in Unity Catalog): one location decides for any path. */
async function refuseOverlap(db: Queryable, url: string, path: string, exceptId?: string): Promise<void> {
  const other = await findOverlappingLocation(db, path, exceptId);
  if (other) {
    throw invalidParameter(
      `url '${url}' overlaps external location '${other.name}' (${other.url}); external locations cannot contain one another.`,
    );
  }
}

/** Fields of CreateExternalLocation that need a cloud and mean nothing for local directories. */
function rejectCloudFields(body: Record<string, unknown>): void {
  rejectUnsupported(body, ['encryption_details', 'file_event_queue'], 'external locations');
  for (const field of ['fallback', 'enable_file_events']) {
    if (optionalBoolean(body, field)) {
      throw invalidParameter(
        `Field '${field}' is not supported for external locations in Pier; leave it out.`,
      );
    }
  }
}

/**
 * `POST /unity-catalog/external-locations` (admins): `name`, `url`
 * (file:///dir or /dir, an existing directory), optional `credential_name`
 * (no cloud credential applies to a local directory; it is kept as given),
 * `comment`, `read_only`.
 */
export async function createExternalLocation(
  ctx: ControlContext,
  caller: IdentityRow,
  input: unknown,
): Promise<ExternalLocationRow> {
  const body = asObject(input, 'The external location');
  const name = validateName(body.name, 'external location');
  rejectCloudFields(body);
  optionalBoolean(body, 'skip_validation');
  const credentialName = optionalString(body, 'credential_name') || null;
  const comment = optionalComment(body) ?? null;
  const readOnly = optionalBoolean(body, 'read_only') ?? false;
  requireCreateExternalLocation(caller);
  const directory = await locationDirectory(body.url);
  return ctx.store
    .transaction(async (tx) => {
      await lockStoragePaths(tx);
      if (await findExternalLocation(tx, name)) throw alreadyExists(name);
      await refuseOverlap(tx, directory.url, directory.path);
      return insertExternalLocation(tx, {
        id: randomUUID(),
        name,
        ...directory,
        credential_name: credentialName,
        comment,
        read_only: readOnly,
        owner: caller.user_name,
      });
    })
    .catch(alreadyExistsOnConflict(alreadyExists(name).message));
}

async function loadExternalLocation(db: Queryable, name: string, lock = false): Promise<ExternalLocationRow> {
  const location = await findExternalLocation(db, name, lock);
  if (!location) throw notFound(`External location '${name}' does not exist.`);
  return location;
}

/** `GET …/external-locations/{name}`: admins, the owner, and whoever holds a privilege on it. */
export async function getExternalLocation(
  ctx: ControlContext,
  caller: IdentityRow,
  rawName: string,
): Promise<ExternalLocationRow> {
  const location = await loadExternalLocation(ctx.store, validateName(rawName, 'external location'));
  const access = await Access.load(ctx.store, caller, [externalLocationSecurable(location)]);
  if (!access.holdsAny(0)) {
    throw new PierError(
      'PERMISSION_DENIED',
      `User ${caller.user_name} has no privilege on External Location '${location.name}'. Ask its owner or an admin to grant one.`,
    );
  }
  return location;
}

/** `GET …/external-locations`: the locations the caller may see, paged as every UC list. */
export async function listExternalLocations(
  ctx: ControlContext,
  caller: IdentityRow,
  query: Record<string, string | undefined>,
): Promise<Page<ExternalLocationRow>> {
  return collectPage(
    parsePageRequest(query),
    (after, limit) => listExternalLocationsPage(ctx.store, after, limit),
    (rows) =>
      Access.filter(
        ctx.store,
        caller,
        rows,
        (row) => [externalLocationSecurable(row)],
        (a) => a.holdsAny(0),
      ),
  );
}

/**
 * `PATCH …/external-locations/{name}` (owner or admin): comment, owner,
 * new_name, url, read_only, credential_name. Moving the url away from tables
 * registered under it needs `force: true`.
 */
export async function updateExternalLocation(
  ctx: ControlContext,
  caller: IdentityRow,
  rawName: string,
  input: unknown,
): Promise<ExternalLocationRow> {
  const name = validateName(rawName, 'external location');
  const body = asObject(input, 'The external location update');
  rejectCloudFields(body);
  rejectUnsupported(body, ['isolation_mode'], 'external location updates');
  optionalBoolean(body, 'skip_validation');
  const newName =
    body.new_name === undefined || body.new_name === null
      ? undefined
      : validateName(body.new_name, 'external location', 'new_name');
  const comment = optionalComment(body);
  const readOnly = optionalBoolean(body, 'read_only');
  const credentialName = optionalString(body, 'credential_name');
  const force = optionalBoolean(body, 'force') ?? false;
  const directory =
    body.url === undefined || body.url === null ? undefined : await locationDirectory(body.url);
  return ctx.store
    .transaction(async (tx) => {
      await lockStoragePaths(tx);
      const location = await loadExternalLocation(tx, name, true);
      (await Access.load(tx, caller, [externalLocationSecurable(location)])).requireOwnership(0, 'update');
      const owner =
        body.owner === undefined || body.owner === null
          ? location.owner
          : await validatePrincipal(tx, body.owner, 'owner');
      if (newName && newName !== name && (await findExternalLocation(tx, newName)))
        throw alreadyExists(newName);
      if (directory && directory.path !== location.path) {
        await refuseOverlap(tx, directory.url, directory.path, location.id);
        const stranded = await countTablesUnder(tx, location.path, directory.path);
        if (stranded > 0 && !force) {
          throw new PierError(
            'INVALID_STATE',
            `${stranded} table(s) registered under external location '${name}' would be outside its new url. Move or delete them first, or pass force: true.`,
          );
        }
      }
      return updateExternalLocationRow(
        tx,
        location.id,
        {
          name: newName ?? location.name,
          url: directory?.url ?? location.url,
          path: directory?.path ?? location.path,
          credential_name: credentialName === undefined ? location.credential_name : credentialName || null,
          comment: comment ?? location.comment,
          read_only: readOnly ?? location.read_only,
          owner,
        },
        caller.user_name,
      );
    })
    .catch(alreadyExistsOnConflict(alreadyExists(newName ?? name).message));
}

/**
 * `DELETE …/external-locations/{name}` (owner or admin). With tables
 * registered under it, only with force=true; the tables stay registered
 * (their files are not touched), but no new table can be registered there.
 */
export async function deleteExternalLocation(
  ctx: ControlContext,
  caller: IdentityRow,
  rawName: string,
  query: { force?: string },
): Promise<void> {
  const name = validateName(rawName, 'external location');
  const force = parseForce(query.force);
  await ctx.store.transaction(async (tx) => {
    await lockStoragePaths(tx);
    const location = await loadExternalLocation(tx, name, true);
    (await Access.load(tx, caller, [externalLocationSecurable(location)])).requireOwnership(0, 'delete');
    const tables = await countTablesUnder(tx, location.path);
    if (tables > 0 && !force) {
      throw new PierError(
        'INVALID_STATE',
        `External location '${name}' has ${tables} table(s) registered under it. Delete them first, or pass force=true.`,
      );
    }
    await deleteExternalLocationRow(tx, location.id);
  });
}

/** The one answer for a path that leaves every location the caller may use, whatever is on disk. */
function outsideEveryLocation(given: string, lexical: string): PierError {
  return new PierError(
    'PERMISSION_DENIED',
    `storage_location '${given}' is not inside an external location. Ask an admin to create one that covers it ` +
      `(pier external-locations create NAME ${fileUrl(lexical)}) and to grant you CREATE_EXTERNAL_TABLE on it.`,
  );
}

/**
 * Authorises a storage location: its lexical path must lie in an external
 * location the caller holds `privilege` on (decided before the disk is
 * touched), and its realpath inside that same location. Returns the realpath
 * and whether it exists entirely (else `path` is its deepest existing part).
 * A path leaving the location by `..` or a symbolic link gets the same
 * answer as one outside every location, whether or not its target exists.
 *
 * @example
 * const { path } = await authorizeStorageLocation(tx, caller, '/data/lake/t', 'CREATE_EXTERNAL_TABLE');
 */
export async function authorizeStorageLocation(
  db: Queryable,
  caller: IdentityRow,
  given: string,
  privilege: Extract<Privilege, 'CREATE_EXTERNAL_TABLE' | 'READ_FILES'>,
): Promise<{ path: string; complete: boolean; location: ExternalLocationRow }> {
  const lexical = localPath(given, 'storage_location');
  const location = (await listAllExternalLocations(db)).find(
    (l) => isWithin(lexical, l.path) || isWithin(lexical, localPath(l.url, 'url')),
  );
  if (!location) throw outsideEveryLocation(given, lexical);
  (await Access.load(db, caller, [externalLocationSecurable(location)])).require(privilege, 0);
  const { real, complete } = await resolveOnDisk(lexical).catch(() => ({ real: '/', complete: false }));
  if (!isWithin(real, location.path)) throw outsideEveryLocation(given, lexical);
  return { path: real, complete, location };
}
