import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { reservedNameSqlCondition } from '../../auth/reserved-names.js';
import type { PostgresRuntime } from './runtime.js';

/**
 * `databricks_auth`: the SQL route to Databricks-identity roles, as on
 * Lakebase. `CREATE EXTENSION databricks_auth;` (trusted: any member of
 * databricks_superuser may run it), then
 * `SELECT databricks_create_role('jane@example.com', 'USER');`.
 * The role logs in with a database credential issued to that identity.
 */
const CONTROL = `comment = 'Roles for Databricks identities (Pier)'
default_version = '1.0'
relocatable = false
schema = pg_catalog
trusted = true
`;

const INSTALL = `-- Installed by Pier. Runs as the bootstrap superuser (trusted extension).
CREATE FUNCTION pg_catalog.databricks_create_role(identity_name text, identity_type text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $fn$
BEGIN
  IF identity_name IS NULL OR identity_name = '' OR length(identity_name) > 63 THEN
    RAISE EXCEPTION 'identity name must be 1-63 characters, got %', coalesce(identity_name, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF upper(identity_type) NOT IN ('USER', 'SERVICE_PRINCIPAL', 'GROUP') THEN
    RAISE EXCEPTION 'identity_type must be USER, SERVICE_PRINCIPAL or GROUP, got %', identity_type
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF ${reservedNameSqlCondition('identity_name')} THEN
    RAISE EXCEPTION 'role name % is reserved', identity_name USING ERRCODE = 'reserved_name';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = identity_name) THEN
    RAISE EXCEPTION 'role "%" already exists', identity_name USING ERRCODE = 'duplicate_object';
  END IF;
  -- Identity roles log in with database credentials only: a password they set themselves never validates.
  EXECUTE format('CREATE ROLE %I %s VALID UNTIL ''-infinity''', identity_name, CASE WHEN upper(identity_type) = 'GROUP' THEN 'NOLOGIN' ELSE 'LOGIN' END);
  -- As with roles made through the API: databricks_superuser members administer it.
  EXECUTE format('GRANT %I TO databricks_superuser WITH ADMIN TRUE, INHERIT FALSE, SET FALSE', identity_name);
  RETURN identity_name;
END
$fn$;
REVOKE ALL ON FUNCTION pg_catalog.databricks_create_role(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pg_catalog.databricks_create_role(text, text) TO databricks_superuser;
`;

/** Writes Pier's own extensions into the runtime's extension directory (idempotent). */
export async function installPierExtensions(runtime: PostgresRuntime): Promise<void> {
  const dir = join(runtime.binDir, '..', 'share', 'postgresql', 'extension');
  await writeFile(join(dir, 'databricks_auth.control'), CONTROL, { mode: 0o644 });
  await writeFile(join(dir, 'databricks_auth--1.0.sql'), INSTALL, { mode: 0o644 });
}
