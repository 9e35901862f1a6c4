import { asObject, describe, optionalString } from '../control/validate.js';
import { invalidParameter, PierError } from '../errors.js';
import { findIdentityByUserName } from '../identities/store.js';
import type { Queryable } from '../store/store.js';
import { EVERYONE } from './privileges.js';

/** Request-field checks shared by the catalog, schema and table services. */

export function optionalComment(body: Record<string, unknown>): string | undefined {
  return optionalString(body, 'comment');
}

/** `properties`: a map of string to string. */
export function optionalProperties(body: Record<string, unknown>): Record<string, string> | undefined {
  if (body.properties === undefined || body.properties === null) return undefined;
  const properties = asObject(body.properties, `Field 'properties'`);
  for (const [key, value] of Object.entries(properties)) {
    if (typeof value !== 'string') {
      throw invalidParameter(`Property '${key}' must be a string, got ${describe(value)}.`);
    }
  }
  return properties as Record<string, string>;
}

/** Fields Pier does not support: naming them is an error rather than silently ignored. */
export function rejectUnsupported(body: Record<string, unknown>, fields: string[], what: string): void {
  for (const field of fields) {
    if (body[field] !== undefined && body[field] !== null) {
      throw invalidParameter(`Field '${field}' is not supported for ${what} in Pier; leave it out.`);
    }
  }
}

/**
 * A principal that can own objects or receive grants: an existing user (its
 * stored spelling is returned), or one of the groups Pier knows.
 */
export async function validatePrincipal(db: Queryable, value: unknown, field: string): Promise<string> {
  if (typeof value !== 'string' || value === '') {
    throw invalidParameter(`Field '${field}' must name a user or group.`);
  }
  if (EVERYONE.includes(value.toLowerCase()) || value.toLowerCase() === 'admins') return value.toLowerCase();
  const identity = await findIdentityByUserName(db, value);
  if (!identity) {
    throw invalidParameter(
      `Principal '${value}' does not exist in this workspace. Create the user first (SCIM Users).`,
    );
  }
  return identity.user_name;
}

/** `force` query flag: absent, true or false. */
export function parseForce(value: string | undefined): boolean {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw invalidParameter(`force must be true or false, got ${describe(value)}.`);
}

/** Postgres unique violations from a concurrent create become RESOURCE_ALREADY_EXISTS. */
export function alreadyExistsOnConflict(message: string) {
  return (error: unknown): never => {
    if ((error as { code?: string }).code === '23505') {
      throw new PierError('RESOURCE_ALREADY_EXISTS', message, { cause: error });
    }
    throw error;
  };
}
