import type { IssuedCredential } from './credentials.js';
import type { RoleResult } from './roles.js';

/**
 * The SDK's DatabaseInstanceRole for a Postgres role: the one mapping from
 * the roles service's results to JSON.
 */
export function roleView({ instance, role, record }: RoleResult) {
  const effective = {
    createdb: role.rolcreatedb,
    createrole: role.rolcreaterole,
    bypassrls: role.rolbypassrls,
  };
  return {
    name: role.rolname,
    instance_name: instance.name,
    identity_type:
      record?.identity_type ??
      (role.rolname === instance.creator || role.rolname.includes('@') ? 'USER' : 'PG_ONLY'),
    ...(role.superuser_member ? { membership_role: 'DATABRICKS_SUPERUSER' } : {}),
    attributes: record?.attributes ?? effective,
    effective_attributes: effective,
  };
}

/** The SDK's DatabaseCredential: the token and its expiry in RFC3339, as Databricks returns them. */
export function databaseCredentialView({ token, expiresAt }: IssuedCredential) {
  return { token, expiration_time: expiresAt.toISOString() };
}
