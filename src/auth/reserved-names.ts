/**
 * Names no workspace identity and no instance role may take, because
 * Postgres or Pier already uses them inside every instance. The proxy logs a
 * client in as the role named like its user over a private socket where
 * Postgres trusts the connection, so an identity called `postgres` would be
 * the instance's real superuser. Checked when users are created, when
 * instance roles are created, when credentials are issued and at login.
 *
 * Compared case-insensitively: Postgres folds unquoted names to lower case,
 * so `POSTGRES` typed in SQL is `postgres`; refusing every spelling keeps the
 * rule the same whichever way a name travels.
 */

/** Exact names (lower case): Postgres' bootstrap superuser and pseudo-roles, the instance's admin role. */
const RESERVED_NAMES = [
  'postgres', // the bootstrap superuser of every instance (initdb -U postgres)
  'databricks_superuser', // the instance's administrative role (see engine/local/template.ts)
  'public', // the PUBLIC pseudo-role of GRANT … TO PUBLIC
  'none', // Postgres refuses it as a role name
  'current_user',
  'current_role',
  'session_user',
] as const;

/**
 * Prefixes (lower case): `pg_` is Postgres' own (pg_read_all_data,
 * pg_execute_server_program, …: CREATE ROLE refuses them); `databricks_` is
 * Lakebase's system roles (databricks_superuser, databricks_monitor,
 * databricks_writer_<db>, databricks_reader_<db>, …).
 */
const RESERVED_PREFIXES = ['pg_', 'databricks_'] as const;

/**
 * Why `name` is reserved, or undefined when it is free to use.
 *
 * @example
 * reservedNameReason('Postgres'); // "'Postgres' is the name of Postgres' own superuser"
 * reservedNameReason('jane@example.com'); // undefined
 */
export function reservedNameReason(name: string): string | undefined {
  const lower = name.toLowerCase();
  if (lower === 'postgres') return `'${name}' is the name of Postgres' own superuser`;
  if ((RESERVED_NAMES as readonly string[]).includes(lower)) return `'${name}' is a name Postgres reserves`;
  const prefix = RESERVED_PREFIXES.find((p) => lower.startsWith(p));
  if (prefix === 'pg_') return `names starting with 'pg_' belong to Postgres' built-in roles`;
  if (prefix) return `names starting with '${prefix}' belong to the instance's system roles`;
  return undefined;
}

/**
 * The same rule as a SQL condition on a text expression, for code that runs
 * inside an instance (the databricks_auth extension).
 *
 * @example
 * `IF ${reservedNameSqlCondition('identity_name')} THEN RAISE …`
 */
export function reservedNameSqlCondition(expression: string): string {
  const exact = RESERVED_NAMES.map((n) => `'${n}'`).join(', ');
  const prefixes = RESERVED_PREFIXES.map((p) => `starts_with(lower(${expression}), '${p}')`).join(' OR ');
  return `(lower(${expression}) IN (${exact}) OR ${prefixes})`;
}
