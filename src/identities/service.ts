import { createPersonalAccessToken } from '../auth/personal-access-tokens.js';
import { reservedNameReason } from '../auth/reserved-names.js';
import { deleteGrantsOfPrincipal } from '../catalog/grants-store.js';
import { transferCatalogOwnership } from '../catalog/store.js';
import type { ControlContext } from '../control/context.js';
import { asObject, optionalBoolean, optionalInteger, optionalString } from '../control/validate.js';
import { invalidParameter, notFound, PierError } from '../errors.js';
import { deletePermissionsOfPrincipal } from '../instances/permissions-store.js';
import {
  countIdentities,
  deleteIdentity,
  deleteToken,
  findIdentityById,
  findIdentityByUserName,
  type IdentityRow,
  insertIdentity,
  listIdentities,
  listTokens,
  type TokenRow,
} from './store.js';

const USER_NAME_PATTERN = /^[^\s@]+@[^\s@]+$|^[a-z0-9][a-z0-9._-]*$/i;

/** SCIM create: `{userName, displayName?, groups?: [{display:'admins'}]}`. */
export async function createUser(ctx: ControlContext, input: unknown): Promise<IdentityRow> {
  const body = asObject(input, 'The SCIM user');
  const userName = optionalString(body, 'userName');
  if (!userName || !USER_NAME_PATTERN.test(userName)) {
    throw invalidParameter('userName is required: an e-mail address such as "jane@example.com".');
  }
  // Every identity logs in to instances as the Postgres role of its name.
  const reserved = reservedNameReason(userName);
  if (reserved) {
    throw invalidParameter(
      `userName '${userName}' is reserved: ${reserved}. Choose another name, such as an e-mail address.`,
    );
  }
  const groups = Array.isArray(body.groups) ? body.groups : [];
  const isAdmin = groups.some(
    (g) =>
      typeof g === 'object' &&
      g !== null &&
      ['admins'].includes(
        String((g as Record<string, unknown>).display ?? (g as Record<string, unknown>).value),
      ),
  );
  return ctx.store.transaction(async (tx) => {
    if (await findIdentityByUserName(tx, userName)) {
      throw new PierError('RESOURCE_ALREADY_EXISTS', `User with username ${userName} already exists.`);
    }
    return insertIdentity(tx, { userName, displayName: optionalString(body, 'displayName'), isAdmin });
  });
}

/** One page of users in id order, and how many there are in all. */
export async function listUsers(
  ctx: ControlContext,
  page: { offset: number; limit: number },
): Promise<{ rows: IdentityRow[]; total: number }> {
  return listKind(ctx, page, 'USER');
}

/** One page of the identities of one kind, and how many there are in all. */
export async function listKind(
  ctx: ControlContext,
  page: { offset: number; limit: number },
  kind: IdentityRow['kind'],
): Promise<{ rows: IdentityRow[]; total: number }> {
  return {
    rows: await listIdentities(ctx.store, { ...page, kind }),
    total: await countIdentities(ctx.store, kind),
  };
}

export async function getUser(ctx: ControlContext, id: string): Promise<IdentityRow> {
  const row = await findIdentityById(ctx.store, id);
  if (row?.kind !== 'USER') throw notFound(`User ${id} does not exist.`);
  return row;
}

/**
 * Deletes an identity and everything granted to its name, in one
 * transaction, so a later identity of the same name starts with nothing:
 * its instance permissions and catalog grants are removed, and the catalog
 * objects it owns pass to the admin deleting it. Its tokens go with it
 * (personal access tokens at once; database credentials are refused by the
 * proxy from now on). Postgres roles inside instances are left alone: they
 * may own data (delete them with the roles API and reassign_owned_to).
 */
export async function removeUser(ctx: ControlContext, caller: IdentityRow, id: string): Promise<void> {
  await removeIdentity(ctx, caller, id, 'USER');
}

/**
 * Deletes a user or a service principal (`kind`) as removeUser describes;
 * a service principal's OAuth secrets go with it, and access tokens issued
 * to it are refused from now on (by the API and the proxy).
 */
export async function removeIdentity(
  ctx: ControlContext,
  caller: IdentityRow,
  id: string,
  kind: IdentityRow['kind'],
): Promise<void> {
  const what = kind === 'USER' ? 'User' : 'Service principal';
  if (caller.id === id) throw invalidParameter(`You cannot delete your own ${what.toLowerCase()}.`);
  await ctx.store.transaction(async (tx) => {
    const user = await findIdentityById(tx, id, { lock: true });
    if (user?.kind !== kind) throw notFound(`${what} ${id} does not exist.`);
    await deletePermissionsOfPrincipal(tx, user.user_name);
    await deleteGrantsOfPrincipal(tx, user.user_name);
    await transferCatalogOwnership(tx, user.user_name, caller.user_name);
    await deleteIdentity(tx, id);
  });
  ctx.identities.forget(id);
}

/** Resolves a user by SCIM id or user name (token-management's `application_id`). */
export async function findUser(ctx: ControlContext, idOrName: string): Promise<IdentityRow> {
  const row =
    (await findIdentityById(ctx.store, idOrName)) ?? (await findIdentityByUserName(ctx.store, idOrName));
  if (!row) throw notFound(`User '${idOrName}' does not exist.`);
  return row;
}

/**
 * A new personal access token for `owner` (`POST /api/2.0/token/create`).
 * The plain token is in the result once; the store keeps only its hash.
 */
export async function createToken(ctx: ControlContext, owner: IdentityRow, input: unknown) {
  const body = asObject(input, 'The request body');
  const lifetime = optionalInteger(body, 'lifetime_seconds');
  if (lifetime !== undefined && lifetime < 0 && lifetime !== -1) {
    throw invalidParameter(
      'lifetime_seconds must be positive, or -1 / omitted for a token that does not expire.',
    );
  }
  optionalBoolean(body, 'is_admin');
  const comment = optionalString(body, 'comment');
  const created = await createPersonalAccessToken(ctx.store, owner.id, {
    comment,
    lifetimeSeconds: lifetime,
  });
  return { ...created, comment, owner };
}

/** The owner's tokens (never their values). */
export async function listOwnTokens(ctx: ControlContext, owner: IdentityRow): Promise<TokenRow[]> {
  return listTokens(ctx.store, owner.id);
}

export async function revokeToken(ctx: ControlContext, owner: IdentityRow, input: unknown): Promise<void> {
  const tokenId = optionalString(asObject(input, 'The request body'), 'token_id');
  if (!tokenId) throw invalidParameter(`Field 'token_id' is required.`);
  if (!(await deleteToken(ctx.store, owner.id, tokenId))) throw notFound(`Token ${tokenId} does not exist.`);
}
