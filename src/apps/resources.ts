import { describe } from '../control/validate.js';

/** The database an app resource binds when none is named, as on Databricks. */
const DEFAULT_DATABASE = 'databricks_postgres';
/** The resource key Databricks gives a database resource when none is named. */
const DEFAULT_RESOURCE_NAME = 'database';
const PERMISSIONS = ['CAN_CONNECT_AND_CREATE'] as const;

/** A database resource of an app, in the Databricks Apps schema (the only kind Pier binds). */
export interface DatabaseResource {
  name: string;
  description?: string;
  database: { instance_name: string; database_name: string; permission: (typeof PERMISSIONS)[number] };
}

/** Where in a document a problem is: the keys and indexes from the top, e.g. ['resources', 0, 'database']. */
export type FieldPath = (string | number)[];

/**
 * A problem with one field of an app's configuration. The API reports it with
 * the field's path, app.yaml with its line (see app-yaml.ts).
 */
export class ConfigProblem extends Error {
  constructor(
    readonly path: FieldPath,
    message: string,
  ) {
    super(message);
  }
}

/** `resources[0].database` for a message. */
export function pathText(path: FieldPath): string {
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? part : `.${part}`))
    .join('');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringField(body: Record<string, unknown>, key: string, path: FieldPath): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ConfigProblem([...path, key], `${key} must be a non-empty string, got ${describe(value)}.`);
  }
  return value;
}

const EXAMPLE = `{name: db, database: {instance_name: order-mgmt-db, database_name: ${DEFAULT_DATABASE}, permission: CAN_CONNECT_AND_CREATE}}`;

/**
 * One resource, in the Databricks Apps schema or the shorter
 * `{name, database: {instance: order-mgmt-db}}`; the database defaults to
 * databricks_postgres and the permission to CAN_CONNECT_AND_CREATE.
 */
function parseResource(raw: unknown, path: FieldPath): DatabaseResource {
  if (!isObject(raw)) throw new ConfigProblem(path, `A resource must be a mapping such as ${EXAMPLE}.`);
  const name = stringField(raw, 'name', path) ?? DEFAULT_RESOURCE_NAME;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
    throw new ConfigProblem(
      [...path, 'name'],
      `Resource name '${name}' may hold only letters, digits, '-' and '_' (at most 64).`,
    );
  }
  const other = Object.keys(raw).find((key) => !['name', 'description', 'database'].includes(key));
  if (other) {
    throw new ConfigProblem(
      [...path, other],
      `Pier binds database resources only; '${other}' is not supported. Write ${EXAMPLE}.`,
    );
  }
  const database = raw.database;
  if (!isObject(database)) {
    throw new ConfigProblem(
      database === undefined ? path : [...path, 'database'],
      `Resource '${name}' needs a 'database' mapping, e.g. ${EXAMPLE}.`,
    );
  }
  const dbPath = [...path, 'database'];
  const unknownKey = Object.keys(database).find(
    (key) => !['instance_name', 'instance', 'database_name', 'database', 'permission'].includes(key),
  );
  if (unknownKey) {
    throw new ConfigProblem(
      [...dbPath, unknownKey],
      `Unknown field '${unknownKey}' in database resource '${name}'; use instance_name, database_name and permission.`,
    );
  }
  const instanceName = stringField(database, 'instance_name', dbPath);
  const instance = stringField(database, 'instance', dbPath);
  if (instanceName && instance && instanceName !== instance) {
    throw new ConfigProblem(
      [...dbPath, 'instance'],
      `instance and instance_name disagree ('${instance}', '${instanceName}'); keep instance_name.`,
    );
  }
  if (!instanceName && !instance) {
    throw new ConfigProblem(
      dbPath,
      `Database resource '${name}' names no instance; add instance_name: <your instance>, e.g. instance_name: order-mgmt-db.`,
    );
  }
  const databaseName =
    stringField(database, 'database_name', dbPath) ??
    stringField(database, 'database', dbPath) ??
    DEFAULT_DATABASE;
  const permission = database.permission ?? 'CAN_CONNECT_AND_CREATE';
  if (!PERMISSIONS.includes(permission as (typeof PERMISSIONS)[number])) {
    throw new ConfigProblem(
      [...dbPath, 'permission'],
      `permission ${describe(permission)} is not one Databricks Apps grants; write permission: CAN_CONNECT_AND_CREATE.`,
    );
  }
  const description = stringField(raw, 'description', path);
  return {
    name,
    ...(description ? { description } : {}),
    database: {
      instance_name: (instanceName ?? instance) as string,
      database_name: databaseName,
      permission: 'CAN_CONNECT_AND_CREATE',
    },
  };
}

/** A list of resources whose names are unique. */
export function parseResources(raw: unknown, path: FieldPath): DatabaseResource[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new ConfigProblem(path, `resources must be a list, e.g. - ${EXAMPLE}`);
  const resources = raw.map((item, i) => parseResource(item, [...path, i]));
  const seen = new Set<string>();
  resources.forEach((resource, i) => {
    if (seen.has(resource.name)) {
      throw new ConfigProblem(
        [...path, i, 'name'],
        `Two resources are named '${resource.name}'; give each its own name.`,
      );
    }
    seen.add(resource.name);
  });
  return resources;
}

/**
 * `resources` with `added` put in: a resource of the same name is replaced.
 * What `pier apps deploy --resource` and app.yaml's own resources do to the app's.
 */
export function mergeResources(resources: DatabaseResource[], added: DatabaseResource[]): DatabaseResource[] {
  const names = new Set(added.map((resource) => resource.name));
  return [...resources.filter((resource) => !names.has(resource.name)), ...added];
}

/**
 * `--resource NAME=INSTANCE[/DATABASE]`, or a resource as JSON.
 *
 * @example
 * parseResourceFlag('db=order-mgmt-db') // {name: 'db', database: {instance_name: 'order-mgmt-db', database_name: 'databricks_postgres', …}}
 */
export function parseResourceFlag(text: string): DatabaseResource {
  if (text.trim().startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ConfigProblem([], `--resource '${text}' is not valid JSON.`);
    }
    return parseResource(parsed, []);
  }
  const match = /^([^=]+)=([^/]+)(?:\/(.+))?$/.exec(text.trim());
  if (!match) {
    throw new ConfigProblem(
      [],
      `--resource '${text}' is not NAME=INSTANCE[/DATABASE], e.g. --resource db=order-mgmt-db/${DEFAULT_DATABASE}.`,
    );
  }
  return parseResource(
    { name: match[1], database: { instance_name: match[2], database_name: match[3] } },
    [],
  );
}
