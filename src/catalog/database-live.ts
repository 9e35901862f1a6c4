import pg from 'pg';
import type { ControlContext } from '../control/context.js';
import { PierError } from '../errors.js';
import { noteFailure } from '../failures.js';
import type { IdentityRow } from '../identities/store.js';
import { permissionOn } from '../instances/permissions.js';
import { reportedState } from '../instances/state.js';
import { findInstanceByUid, type InstanceRow } from '../instances/store.js';
import { instanceConnection } from '../nodes/service.js';
import type { CatalogRow, ColumnInfo } from './store.js';
import type { LiveSchema, LiveTable } from './views.js';

/**
 * Reads a database catalog's schemas and tables live from its instance's
 * Postgres, as the caller's own Postgres role: Pier connects over the
 * instance's private socket and runs every query inside a transaction after
 * `SET LOCAL ROLE <caller>`, so Postgres' privileges decide what a user sees
 * (schemas they may use, tables they hold a privilege on, their columns).
 * Reading needs CAN_USE on the instance at the time of the read.
 */

/** Schemas Postgres keeps for itself; UC never shows them. */
const SYSTEM_SCHEMAS = "nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'";

/** A schema the current role owns or holds a privilege on. */
const SCHEMA_VISIBLE = `has_schema_privilege(pg_namespace.oid, 'USAGE, CREATE')`;

/** A relation of a usable schema that the current role holds some privilege on (its own or a column's). */
const TABLE_VISIBLE = `has_schema_privilege(n.oid, 'USAGE')
  AND (has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
       OR has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))`;

/** Postgres type (information_schema) → Unity Catalog type name, Spark type text and Spark JSON type. */
function mapType(column: {
  data_type: string;
  udt_name: string;
  numeric_precision: number | null;
  numeric_scale: number | null;
}): { type_name: string; type_text: string; json: unknown; precision?: number; scale?: number } {
  const simple = (type_name: string, type_text: string, json: string = type_text) => ({
    type_name,
    type_text,
    json,
  });
  switch (column.data_type) {
    case 'smallint':
      return simple('SHORT', 'smallint', 'short');
    case 'integer':
      return simple('INT', 'int', 'integer');
    case 'bigint':
      return simple('LONG', 'bigint', 'long');
    case 'real':
      return simple('FLOAT', 'float');
    case 'double precision':
      return simple('DOUBLE', 'double');
    case 'numeric': {
      // Unconstrained numeric has no precision: Spark's widest decimal is the closest.
      const precision = column.numeric_precision ?? 38;
      const scale = column.numeric_scale ?? 18;
      const text = `decimal(${precision},${scale})`;
      return { type_name: 'DECIMAL', type_text: text, json: text, precision, scale };
    }
    case 'boolean':
      return simple('BOOLEAN', 'boolean');
    case 'bytea':
      return simple('BINARY', 'binary');
    case 'date':
      return simple('DATE', 'date');
    case 'timestamp with time zone':
      return simple('TIMESTAMP', 'timestamp');
    case 'timestamp without time zone':
      return simple('TIMESTAMP_NTZ', 'timestamp_ntz');
    case 'ARRAY': {
      const element = mapType({
        data_type: ELEMENT_TYPES[column.udt_name.replace(/^_/, '')] ?? 'text',
        udt_name: column.udt_name.replace(/^_/, ''),
        numeric_precision: null,
        numeric_scale: null,
      });
      return {
        type_name: 'ARRAY',
        type_text: `array<${element.type_text}>`,
        json: { type: 'array', elementType: element.json, containsNull: true },
      };
    }
    default:
      // text, varchar, char, uuid, json, jsonb, enums, … are strings to Spark.
      return simple('STRING', 'string');
  }
}

/** Array element udt names → their information_schema data_type. */
const ELEMENT_TYPES: Record<string, string> = {
  int2: 'smallint',
  int4: 'integer',
  int8: 'bigint',
  float4: 'real',
  float8: 'double precision',
  numeric: 'numeric',
  bool: 'boolean',
  bytea: 'bytea',
  date: 'date',
  timestamptz: 'timestamp with time zone',
  timestamp: 'timestamp without time zone',
};

/**
 * Runs `work` on a connection to the catalog's database, as the caller's
 * Postgres role (see above). A stopped or missing instance is INVALID_STATE;
 * no CAN_USE on the instance, or no usable role in it, PERMISSION_DENIED
 * saying what to do.
 */
export async function withCatalogDatabase<T>(
  ctx: Pick<ControlContext, 'store' | 'engine' | 'config'>,
  caller: IdentityRow,
  catalog: CatalogRow,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const instance = catalog.instance_uid
    ? await findInstanceByUid(ctx.store, catalog.instance_uid)
    : undefined;
  if (!instance || !catalog.database_name) {
    throw new PierError(
      'INVALID_STATE',
      `The database instance of catalog '${catalog.name}' no longer exists.`,
    );
  }
  if (!(await permissionOn(ctx.store, caller, instance))) {
    throw new PierError(
      'PERMISSION_DENIED',
      `User ${caller.user_name} does not have CAN_USE on database instance '${instance.name}', whose database catalog '${catalog.name}' is read live. Ask a user with CAN_MANAGE on the instance to grant it.`,
    );
  }
  const database = catalog.database_name;
  return withInstanceDatabase(ctx, instance, database, async (client) => {
    const { rows } = await client.query<{ rolsuper: boolean; rolcanlogin: boolean }>(
      'SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = $1',
      [caller.user_name],
    );
    if (!rows[0]?.rolcanlogin || rows[0].rolsuper) throw noUsableRole(caller, instance.name, rows[0]);
    await client.query('BEGIN');
    try {
      await client.query(`SET LOCAL ROLE ${pg.escapeIdentifier(caller.user_name)}`);
      await client.query('SET LOCAL search_path = pg_catalog');
      const { rows: connect } = await client.query<{ ok: boolean }>(
        `SELECT has_database_privilege(current_database(), 'CONNECT') AS ok`,
      );
      if (!connect[0].ok) {
        throw new PierError(
          'PERMISSION_DENIED',
          `Postgres role '${caller.user_name}' may not connect to database '${database}' of instance '${instance.name}'. Ask the database's owner to GRANT CONNECT on it.`,
        );
      }
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((cause) => noteFailure('database-catalog.rollback', cause));
      if ((error as { code?: string }).code === '42501') {
        throw new PierError(
          'PERMISSION_DENIED',
          `Postgres refused this to role '${caller.user_name}' in database '${database}' of instance '${instance.name}'. Ask the object's owner for the privilege.`,
          { cause: error },
        );
      }
      throw error;
    }
  });
}

function noUsableRole(
  caller: IdentityRow,
  instanceName: string,
  role: { rolsuper: boolean; rolcanlogin: boolean } | undefined,
): PierError {
  if (role?.rolsuper) {
    return new PierError(
      'PERMISSION_DENIED',
      `Postgres role '${caller.user_name}' in instance '${instanceName}' is a superuser; Pier reads database catalogs only as ordinary roles.`,
    );
  }
  return new PierError(
    'PERMISSION_DENIED',
    `User ${caller.user_name} has no Postgres login role in database instance '${instanceName}', and a database catalog is read as the caller's own role. ` +
      `Create it (CAN_USE holders may create their own): pier database create-database-instance-role ${instanceName} --json '{"name": "${caller.user_name}", "identity_type": "USER"}'`,
  );
}

/**
 * Connects to one database of an instance as the superuser; the instance
 * must be AVAILABLE. Only for what an admin asked (creating a database
 * catalog); reads on a user's behalf go through withCatalogDatabase.
 */
export async function withInstanceDatabase<T>(
  ctx: Pick<ControlContext, 'store' | 'engine' | 'config'>,
  instance: Pick<
    InstanceRow,
    'uid' | 'name' | 'node_id' | 'spec' | 'state' | 'status' | 'generation' | 'observed_generation'
  >,
  database: string,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const state = reportedState(instance);
  if (state !== 'AVAILABLE') {
    throw new PierError(
      'INVALID_STATE',
      `Database instance '${instance.name}' is ${state}; it must be AVAILABLE. Start it (or wait for it) and retry.`,
    );
  }
  const client = new pg.Client(await instanceConnection(ctx, instance, database));
  try {
    await client.connect();
  } catch (cause) {
    if ((cause as { code?: string }).code === '3D000') {
      throw new PierError(
        'RESOURCE_DOES_NOT_EXIST',
        `Database '${database}' does not exist in instance '${instance.name}'. Create it, or pass create_database_if_not_exists.`,
        { cause },
      );
    }
    throw new PierError(
      'INVALID_STATE',
      `Cannot reach database instance '${instance.name}'; retry shortly.`,
      { cause },
    );
  }
  try {
    return await work(client);
  } finally {
    await client.end().catch((cause) => noteFailure('database-catalog.close', cause));
  }
}

/** Schemas the current role owns or holds a privilege on (as information_schema.schemata shows them). */
export async function listLiveSchemas(client: pg.Client): Promise<LiveSchema[]> {
  const { rows } = await client.query<LiveSchema>(
    `SELECT nspname AS name, pg_get_userbyid(nspowner) AS owner FROM pg_namespace
      WHERE ${SYSTEM_SCHEMAS} AND ${SCHEMA_VISIBLE} ORDER BY nspname COLLATE "C"`,
  );
  return rows;
}

export async function findLiveSchema(client: pg.Client, name: string): Promise<LiveSchema | undefined> {
  const { rows } = await client.query<LiveSchema>(
    `SELECT nspname AS name, pg_get_userbyid(nspowner) AS owner FROM pg_namespace
      WHERE ${SYSTEM_SCHEMAS} AND ${SCHEMA_VISIBLE} AND lower(nspname) = $1`,
    [name],
  );
  return rows[0];
}

/**
 * Tables and views of one schema the current role may see, with their
 * columns, ordered by lower-cased name: one table (`name`), or a page of at
 * most `limit` after `after`.
 */
export async function listLiveTables(
  client: pg.Client,
  schema: string,
  select: { name?: string; after?: string; limit?: number } = {},
): Promise<LiveTable[]> {
  const { rows: tables } = await client.query<{ name: string; owner: string; relkind: string }>(
    `SELECT c.relname AS name, pg_get_userbyid(c.relowner) AS owner, c.relkind
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE lower(n.nspname) = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
        AND ${TABLE_VISIBLE}
        AND ($2::text IS NULL OR lower(c.relname) = $2)
        AND lower(c.relname) COLLATE "C" > $3
      ORDER BY lower(c.relname) COLLATE "C" LIMIT $4`,
    [schema, select.name ?? null, select.after ?? '', select.limit ?? null],
  );
  if (tables.length === 0) return [];
  const { rows: columns } = await client.query<{
    table_name: string;
    column_name: string;
    ordinal_position: number;
    is_nullable: string;
    data_type: string;
    udt_name: string;
    numeric_precision: number | null;
    numeric_scale: number | null;
  }>(
    `SELECT table_name, column_name, ordinal_position::int, is_nullable, data_type, udt_name,
            numeric_precision::int, numeric_scale::int
       FROM information_schema.columns
      WHERE lower(table_schema) = $1 AND table_name = ANY($2)
      ORDER BY table_name, ordinal_position`,
    [schema, tables.map((t) => t.name)],
  );
  return tables.map((table) => ({
    name: table.name,
    owner: table.owner,
    table_type: table.relkind === 'v' || table.relkind === 'm' ? 'VIEW' : 'FOREIGN',
    columns: columns
      .filter((c) => c.table_name === table.name)
      .map((c, position): ColumnInfo => {
        const type = mapType(c);
        const nullable = c.is_nullable === 'YES';
        return {
          name: c.column_name,
          type_name: type.type_name,
          type_text: type.type_text,
          type_json: JSON.stringify({ name: c.column_name, type: type.json, nullable, metadata: {} }),
          position,
          nullable,
          ...(type.precision !== undefined ? { type_precision: type.precision, type_scale: type.scale } : {}),
        };
      }),
  }));
}

/**
 * Creates a schema in the database as the current role (Postgres checks its
 * CREATE privilege). A databricks_superuser member makes it owned by
 * databricks_superuser, so the instance's other users can use it.
 */
export async function createLiveSchema(client: pg.Client, name: string): Promise<void> {
  const { rows } = await client.query<{ member: boolean }>(
    `SELECT pg_has_role('databricks_superuser', 'SET') AS member`,
  );
  await client.query(
    `CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(name)}${rows[0].member ? ' AUTHORIZATION databricks_superuser' : ''}`,
  );
}
