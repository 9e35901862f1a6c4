import pg from 'pg';
import type { Engine } from '../engine/engine.js';
import { PierError } from '../errors.js';
import type { CatalogRow, ColumnInfo } from '../store/catalog.js';
import { findInstanceByUid } from '../store/instances.js';
import type { Queryable } from '../store/store.js';
import type { LiveSchema, LiveTable } from './views.js';

/**
 * Reads a database catalog's schemas and tables live from its instance's
 * Postgres (as the `postgres` superuser over the instance's private socket):
 * what UC shows is whatever the database holds right now.
 */

/** Instances listen on this port inside their socket directory. */
const INSTANCE_PORT = 5432;

/** Schemas Postgres keeps for itself; UC never shows them. */
const SYSTEM_SCHEMAS = "nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'";

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
 * Runs `work` on a connection to the catalog's database. A stopped or
 * missing instance is INVALID_STATE with what to do.
 */
export async function withCatalogDatabase<T>(
  store: Queryable,
  engine: Engine,
  catalog: CatalogRow,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const instance = catalog.instance_uid ? await findInstanceByUid(store, catalog.instance_uid) : undefined;
  if (!instance || !catalog.database_name) {
    throw new PierError(
      'INVALID_STATE',
      `The database instance of catalog '${catalog.name}' no longer exists.`,
    );
  }
  return withInstanceDatabase(engine, instance, catalog.database_name, work);
}

/** Connects to one database of an instance as the superuser; the instance must be AVAILABLE. */
export async function withInstanceDatabase<T>(
  engine: Engine,
  instance: { uid: string; name: string; state: string },
  database: string,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  if (instance.state !== 'AVAILABLE') {
    throw new PierError(
      'INVALID_STATE',
      `Database instance '${instance.name}' is ${instance.state}; it must be AVAILABLE. Start it (or wait for it) and retry.`,
    );
  }
  const client = new pg.Client({
    host: engine.socketDir(instance.uid),
    port: INSTANCE_PORT,
    user: 'postgres',
    database,
  });
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
    await client.end().catch(() => {});
  }
}

export async function listLiveSchemas(client: pg.Client): Promise<LiveSchema[]> {
  const { rows } = await client.query<LiveSchema>(
    `SELECT nspname AS name, pg_get_userbyid(nspowner) AS owner FROM pg_namespace
      WHERE ${SYSTEM_SCHEMAS} ORDER BY nspname COLLATE "C"`,
  );
  return rows;
}

export async function findLiveSchema(client: pg.Client, name: string): Promise<LiveSchema | undefined> {
  const { rows } = await client.query<LiveSchema>(
    `SELECT nspname AS name, pg_get_userbyid(nspowner) AS owner FROM pg_namespace
      WHERE ${SYSTEM_SCHEMAS} AND lower(nspname) = $1`,
    [name],
  );
  return rows[0];
}

/** Tables and views of one schema with their columns, name-ordered. */
export async function listLiveTables(
  client: pg.Client,
  schema: string,
  tableName?: string,
): Promise<LiveTable[]> {
  const { rows: tables } = await client.query<{ name: string; owner: string; relkind: string }>(
    `SELECT c.relname AS name, pg_get_userbyid(c.relowner) AS owner, c.relkind
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE lower(n.nspname) = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
        AND ($2::text IS NULL OR lower(c.relname) = $2)
      ORDER BY c.relname COLLATE "C"`,
    [schema, tableName ?? null],
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

/** Creates a schema in the database, owned by databricks_superuser so the instance's users can use it. */
export async function createLiveSchema(client: pg.Client, name: string): Promise<void> {
  await client.query(
    `CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(name)} AUTHORIZATION databricks_superuser`,
  );
}
