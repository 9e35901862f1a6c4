import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { invalidParameter } from '../errors.js';
import { ApiError, call } from './api-client.js';
import { type Credentials, resolveCredentials } from './config.js';
import { parseJsonFlag } from './database.js';
import { printJson, progress } from './output.js';

/**
 * `pier catalogs|schemas|tables|grants …` with the Databricks CLI's
 * positional arguments and flags, `pier tables create-external`, and the
 * database-catalog verbs under `pier database` (including
 * `register-database-instance`, the SDK's register_database_instance).
 */

const UC = '/api/2.1/unity-catalog';

export function credentials(command: Command): Credentials {
  const globals = command.optsWithGlobals() as { profile?: string; dataDir?: string };
  return resolveCredentials({ profile: globals.profile, dataDir: globals.dataDir });
}

export const segment = encodeURIComponent;

/** Follows next_page_token through every page and prints the items, as `databricks … list` does. */
export async function listAll(
  creds: Credentials,
  path: string,
  field: string,
  query: Record<string, string | number | boolean | undefined>,
): Promise<void> {
  const all: unknown[] = [];
  let pageToken = query.page_token as string | undefined;
  do {
    const page = await call<Record<string, unknown>>(creds, 'GET', path, {
      query: { ...query, page_token: pageToken },
    });
    all.push(...((page[field] as unknown[]) ?? []));
    pageToken = page.next_page_token as string | undefined;
  } while (pageToken);
  printJson(all);
}

/** Flags merged over `--json`, flags winning. */
export function bodyOf(options: Record<string, unknown>, map: [string, string][]): Record<string, unknown> {
  const body = parseJsonFlag(options.json as string | undefined);
  for (const [flag, field] of map) if (options[flag] !== undefined) body[field] = options[flag];
  return body;
}

/** The flags every `update` verb shares, and (UPDATE_FIELDS) the body fields they set. */
export const updateFlags = (command: Command, what: string) =>
  command
    .option('--comment <text>', 'User-provided free-form text description.')
    .option('--new-name <name>', `New name for the ${what}.`)
    .option('--owner <principal>', 'Username of the new owner.')
    .option('--json <json>', 'Request body as inline JSON or @path/to/file.json.');
export const UPDATE_FIELDS: [string, string][] = [
  ['comment', 'comment'],
  ['newName', 'new_name'],
  ['owner', 'owner'],
];

export const pageFlags = (command: Command) =>
  command
    .addOption(new Option('--max-results <n>', 'Maximum number of items per page.').argParser(Number))
    .option('--page-token <token>', 'Start from this page.');

function registerCatalogs(program: Command): void {
  const catalogs = program.command('catalogs').description('Unity Catalog catalogs.');
  catalogs
    .command('create <NAME>')
    .description('Create a catalog (admins only).')
    .option('--comment <text>', 'User-provided free-form text description.')
    .option('--storage-root <url>', 'Storage root URL for managed tables within the catalog.')
    .option('--json <json>', 'Request body as inline JSON or @path/to/file.json.')
    .action(async (name: string, options: Record<string, unknown>, command: Command) => {
      const body = {
        ...bodyOf(options, [
          ['comment', 'comment'],
          ['storageRoot', 'storage_root'],
        ]),
        name,
      };
      printJson(await call(credentials(command), 'POST', `${UC}/catalogs`, { body }));
    });
  catalogs
    .command('get <NAME>')
    .description('Get a catalog.')
    .action(async (name: string, _options: unknown, command: Command) => {
      printJson(await call(credentials(command), 'GET', `${UC}/catalogs/${segment(name)}`));
    });
  pageFlags(catalogs.command('list').description('List the catalogs you can use.')).action(
    async (options: { maxResults?: number; pageToken?: string }, command: Command) => {
      await listAll(credentials(command), `${UC}/catalogs`, 'catalogs', {
        max_results: options.maxResults ?? 0,
        page_token: options.pageToken,
      });
    },
  );
  updateFlags(
    catalogs.command('update <NAME>').description('Update a catalog: comment, new name, owner, properties.'),
    'catalog',
  ).action(async (name: string, options: Record<string, unknown>, command: Command) => {
    const body = bodyOf(options, UPDATE_FIELDS);
    printJson(await call(credentials(command), 'PATCH', `${UC}/catalogs/${segment(name)}`, { body }));
  });
  catalogs
    .command('delete <NAME>')
    .description('Delete a catalog.')
    .option('--force', 'Force deletion even if the catalog is not empty.')
    .action(async (name: string, options: { force?: boolean }, command: Command) => {
      await call(credentials(command), 'DELETE', `${UC}/catalogs/${segment(name)}`, {
        query: { force: options.force },
      });
    });
}

function registerSchemas(program: Command): void {
  const schemas = program.command('schemas').description('Unity Catalog schemas.');
  schemas
    .command('create <NAME> <CATALOG_NAME>')
    .description('Create a schema in a catalog.')
    .option('--comment <text>', 'User-provided free-form text description.')
    .option('--json <json>', 'Request body as inline JSON or @path/to/file.json.')
    .action(async (name: string, catalogName: string, options: Record<string, unknown>, command: Command) => {
      const body = { ...bodyOf(options, [['comment', 'comment']]), name, catalog_name: catalogName };
      printJson(await call(credentials(command), 'POST', `${UC}/schemas`, { body }));
    });
  schemas
    .command('get <FULL_NAME>')
    .description('Get a schema by its full name, catalog.schema.')
    .action(async (fullName: string, _options: unknown, command: Command) => {
      printJson(await call(credentials(command), 'GET', `${UC}/schemas/${segment(fullName)}`));
    });
  pageFlags(schemas.command('list <CATALOG_NAME>').description('List the schemas of a catalog.')).action(
    async (catalogName: string, options: { maxResults?: number; pageToken?: string }, command: Command) => {
      await listAll(credentials(command), `${UC}/schemas`, 'schemas', {
        catalog_name: catalogName,
        max_results: options.maxResults ?? 0,
        page_token: options.pageToken,
      });
    },
  );
  updateFlags(
    schemas
      .command('update <FULL_NAME>')
      .description('Update a schema: comment, new name, owner, properties.'),
    'schema',
  ).action(async (fullName: string, options: Record<string, unknown>, command: Command) => {
    const body = bodyOf(options, UPDATE_FIELDS);
    printJson(await call(credentials(command), 'PATCH', `${UC}/schemas/${segment(fullName)}`, { body }));
  });
  schemas
    .command('delete <FULL_NAME>')
    .description('Delete a schema.')
    .option('--force', 'Force deletion even if the schema is not empty.')
    .action(async (fullName: string, options: { force?: boolean }, command: Command) => {
      await call(credentials(command), 'DELETE', `${UC}/schemas/${segment(fullName)}`, {
        query: { force: options.force },
      });
    });
}

function registerTables(program: Command): void {
  const tables = program.command('tables').description('Unity Catalog tables.');
  tables
    .command('create-external <FULL_NAME>')
    .description('Register the Delta table at --location as an EXTERNAL table catalog.schema.table.')
    .requiredOption('--location <path>', 'The Delta table directory: a local path or file:// URI.')
    .option('--comment <text>', 'User-provided free-form text description.')
    .action(async (fullName: string, options: { location: string; comment?: string }, command: Command) => {
      const [catalogName, schemaName, name, ...rest] = fullName.split('.');
      if (!name || rest.length > 0)
        throw invalidParameter(`FULL_NAME must be catalog.schema.table, got "${fullName}".`);
      const location = options.location.startsWith('file:') ? options.location : resolve(options.location);
      const body = {
        name,
        catalog_name: catalogName,
        schema_name: schemaName,
        table_type: 'EXTERNAL',
        data_source_format: 'DELTA',
        storage_location: location,
        ...(options.comment !== undefined ? { comment: options.comment } : {}),
      };
      printJson(await call(credentials(command), 'POST', `${UC}/tables`, { body }));
    });
  tables
    .command('get <FULL_NAME>')
    .description('Get a table by its full name, catalog.schema.table.')
    .action(async (fullName: string, _options: unknown, command: Command) => {
      printJson(await call(credentials(command), 'GET', `${UC}/tables/${segment(fullName)}`));
    });
  pageFlags(tables.command('list <CATALOG_NAME> <SCHEMA_NAME>').description('List the tables of a schema.'))
    .option('--omit-columns', 'Leave the columns out.')
    .action(
      async (
        catalogName: string,
        schemaName: string,
        options: { maxResults?: number; pageToken?: string; omitColumns?: boolean },
        command: Command,
      ) => {
        await listAll(credentials(command), `${UC}/tables`, 'tables', {
          catalog_name: catalogName,
          schema_name: schemaName,
          max_results: options.maxResults ?? 0,
          page_token: options.pageToken,
          omit_columns: options.omitColumns,
        });
      },
    );
  tables
    .command('delete <FULL_NAME>')
    .description('Unregister a table (an EXTERNAL table keeps its files).')
    .action(async (fullName: string, _options: unknown, command: Command) => {
      await call(credentials(command), 'DELETE', `${UC}/tables/${segment(fullName)}`);
    });
}

function registerGrants(program: Command): void {
  const grants = program
    .command('grants')
    .description('Unity Catalog privileges on catalogs, schemas, tables and external locations.');
  const path = (kind: string, type: string, fullName: string) =>
    `${UC}/${kind}/${segment(type)}/${segment(fullName)}`;
  grants
    .command('get <SECURABLE_TYPE> <FULL_NAME>')
    .description('Privileges granted directly on a securable.')
    .option('--principal <name>', 'Only this principal.')
    .action(async (type: string, fullName: string, options: { principal?: string }, command: Command) => {
      printJson(
        await call(credentials(command), 'GET', path('permissions', type, fullName), {
          query: { principal: options.principal },
        }),
      );
    });
  grants
    .command('get-effective <SECURABLE_TYPE> <FULL_NAME>')
    .description('Privileges on a securable, including those inherited from its parents.')
    .option('--principal <name>', 'Only this principal.')
    .action(async (type: string, fullName: string, options: { principal?: string }, command: Command) => {
      printJson(
        await call(credentials(command), 'GET', path('effective-permissions', type, fullName), {
          query: { principal: options.principal },
        }),
      );
    });
  grants
    .command('update <SECURABLE_TYPE> <FULL_NAME>')
    .description('Grant and revoke: --json \'{"changes": [{"principal": "…", "add": ["SELECT"]}]}\'.')
    .requiredOption('--json <json>', 'Request body as inline JSON or @path/to/file.json.')
    .action(async (type: string, fullName: string, options: { json: string }, command: Command) => {
      const body = parseJsonFlag(options.json);
      printJson(await call(credentials(command), 'PATCH', path('permissions', type, fullName), { body }));
    });
}

function registerDatabaseCatalogs(program: Command): void {
  const database =
    program.commands.find((c) => c.name() === 'database') ??
    program.command('database').description('Database instances (Lakebase Provisioned).');
  const catalogPath = (name: string) => `/api/2.0/database/catalogs/${segment(name)}`;

  database
    .command('create-database-catalog <NAME> <DATABASE_INSTANCE_NAME> <DATABASE_NAME>')
    .description('Create a database catalog: a Unity Catalog catalog showing one Postgres database.')
    .option('--create-database-if-not-exists', 'Create the Postgres database if it does not exist.')
    .option('--json <json>', 'Request body as inline JSON or @path/to/file.json.')
    .action(
      async (
        name: string,
        instance: string,
        databaseName: string,
        options: Record<string, unknown>,
        command: Command,
      ) => {
        const body = {
          ...bodyOf(options, [['createDatabaseIfNotExists', 'create_database_if_not_exists']]),
          name,
          database_instance_name: instance,
          database_name: databaseName,
        };
        printJson(await call(credentials(command), 'POST', '/api/2.0/database/catalogs', { body }));
      },
    );
  database
    .command('get-database-catalog <NAME>')
    .description('Get a database catalog.')
    .action(async (name: string, _options: unknown, command: Command) => {
      printJson(await call(credentials(command), 'GET', catalogPath(name)));
    });
  database
    .command('delete-database-catalog <NAME>')
    .description('Delete a database catalog (the Postgres database is kept).')
    .action(async (name: string, _options: unknown, command: Command) => {
      await call(credentials(command), 'DELETE', catalogPath(name));
    });
  database
    .command('list-database-catalogs <INSTANCE_NAME>')
    .description('List the database catalogs of an instance.')
    .addOption(new Option('--page-size <n>', 'Upper bound for items returned per request.').argParser(Number))
    .action(async (instance: string, options: { pageSize?: number }, command: Command) => {
      await listAll(
        credentials(command),
        `/api/2.0/database/instances/${segment(instance)}/catalogs`,
        'database_catalogs',
        {
          page_size: options.pageSize,
        },
      );
    });
  database
    .command('register-database-instance <NAME>')
    .description(
      'Register an instance in Unity Catalog: a database catalog for its database and a schema in it, each created if missing.',
    )
    .requiredOption('--catalog <name>', 'The catalog to show the database as.')
    .requiredOption('--schema <name>', 'The schema to make sure exists (created in Postgres if missing).')
    .option('--database <name>', 'The Postgres database to register.', 'databricks_postgres')
    .action(
      async (
        name: string,
        options: { catalog: string; schema: string; database: string },
        command: Command,
      ) => {
        const creds = credentials(command);
        const catalog = await findOrNull(() => call(creds, 'GET', catalogPath(options.catalog)));
        const standard = catalog
          ? null
          : await findOrNull(() => call(creds, 'GET', `${UC}/catalogs/${segment(options.catalog)}`));
        if (standard) {
          // A standard catalog (e.g. pier demo's): the instance's schema joins it as a database-backed schema.
          const fullName = `${options.catalog}.${options.schema}`;
          let schema = await findOrNull(() => call(creds, 'GET', `${UC}/schemas/${segment(fullName)}`));
          if (schema) requireShowing(schema, fullName, name, options.database);
          if (!schema) {
            progress(`creating schema ${fullName} for ${name}/${options.database}.${options.schema}`);
            schema = await call(creds, 'POST', `${UC}/schemas`, {
              body: {
                name: options.schema,
                catalog_name: options.catalog,
                database_instance_name: name,
                database_name: options.database,
              },
            });
          }
          printJson({ catalog: standard, schema });
          return;
        }
        if (catalog && catalog.database_instance_name !== name) {
          throw invalidParameter(
            `Catalog '${options.catalog}' already shows instance '${String(catalog.database_instance_name)}', not '${name}'. Pick another catalog name.`,
          );
        }
        if (!catalog) {
          progress(`creating database catalog ${options.catalog} for ${name}/${options.database}`);
          await call(creds, 'POST', '/api/2.0/database/catalogs', {
            body: {
              name: options.catalog,
              database_instance_name: name,
              database_name: options.database,
              create_database_if_not_exists: true,
            },
          });
        }
        const fullName = `${options.catalog}.${options.schema}`;
        let schema = await findOrNull(() => call(creds, 'GET', `${UC}/schemas/${segment(fullName)}`));
        if (!schema) {
          progress(`creating schema ${fullName}`);
          schema = await call(creds, 'POST', `${UC}/schemas`, {
            body: { name: options.schema, catalog_name: options.catalog },
          });
        }
        printJson({
          database_catalog: await call(creds, 'GET', catalogPath(options.catalog)),
          schema,
        });
      },
    );
}

/**
 * An existing schema of a standard catalog can be registered again only if
 * it already shows the same instance and database: an ordinary schema (its
 * tables are Delta tables) is never turned into a database-backed one.
 */
function requireShowing(
  schema: { database_instance_name?: unknown; database_name?: unknown },
  fullName: string,
  instance: string,
  database: string,
): void {
  if (!schema.database_instance_name) {
    throw invalidParameter(
      `Schema '${fullName}' already exists as an ordinary Unity Catalog schema, so it cannot show Postgres schema '${fullName.split('.')[1]}' of instance '${instance}'. Pick another --schema (one that does not exist yet, e.g. --schema operational), or delete the schema first (pier schemas delete ${fullName}).`,
    );
  }
  if (schema.database_instance_name !== instance || schema.database_name !== database) {
    throw invalidParameter(
      `Schema '${fullName}' already shows database '${String(schema.database_name)}' of instance '${String(schema.database_instance_name)}', not '${database}' of '${instance}'. Pick another --schema.`,
    );
  }
}

/** The result, or null when the API says the object does not exist. */
async function findOrNull<T>(get: () => Promise<T>): Promise<T | null> {
  try {
    return await get();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

/** Registers `pier catalogs|schemas|tables|grants` and the database-catalog verbs of `pier database`. */
export function registerCatalogCommands(program: Command): void {
  registerCatalogs(program);
  registerSchemas(program);
  registerTables(program);
  registerGrants(program);
  registerDatabaseCatalogs(program);
}
