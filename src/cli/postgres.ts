import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { PierError } from '../errors.js';
import { dataDirLayout, resolveDataDir } from '../server/data-dir.js';
import { call } from './api-client.js';
import { type Credentials, resolveCredentials } from './config.js';
import { parseDuration, parseJsonFlag } from './database.js';
import { printJson } from './output.js';

const BASE = '/api/2.0/postgres';

interface Operation {
  name: string;
  done?: boolean;
  response?: Record<string, unknown>;
  error?: { error_code?: string; message?: string };
}

function credentials(command: Command): Credentials {
  const globals = command.optsWithGlobals() as { profile?: string; dataDir?: string };
  return resolveCredentials({ profile: globals.profile, dataDir: globals.dataDir });
}

/** `projects/p` as given, or a bare id made into one (`p` → `projects/p`). */
const resource = (name: string) => name.replace(/^\/+/, '');

/**
 * Polls an operation until it is done, as the SDKs' `wait()`: its error
 * fails the command (`[CODE] message`), else its response is the result.
 */
async function waitForOperation(
  creds: Credentials,
  operation: Operation,
  timeoutMs: number,
): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  let current = operation;
  let delay = 50;
  while (!current.done) {
    if (Date.now() > deadline) {
      throw new PierError(
        'INTERNAL_ERROR',
        `Timed out after ${timeoutMs} ms waiting for ${operation.name}. Look again with: pier postgres get-operation ${operation.name}`,
      );
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 250);
    current = await call<Operation>(creds, 'GET', `${BASE}/${current.name}`);
  }
  if (current.error)
    throw new PierError('INTERNAL_ERROR', `[${current.error.error_code}] ${current.error.message}`);
  if (!current.response)
    throw new PierError('INTERNAL_ERROR', 'operation completed but no response available');
  return current.response;
}

interface VerbOptions {
  json?: string;
  wait?: boolean;
  timeout: string;
  [flag: string]: unknown;
}

/** Runs one long-running call: prints the operation with --no-wait, else waits and prints its result. */
async function runOperation(
  creds: Credentials,
  options: VerbOptions,
  method: string,
  path: string,
  request: { query?: Record<string, string | number | boolean | undefined>; body?: unknown },
): Promise<void> {
  const operation = await call<Operation>(creds, method, path, request);
  if (options.wait === false) return printJson(await call(creds, 'GET', `${BASE}/${operation.name}`));
  printJson(await waitForOperation(creds, operation, parseDuration(options.timeout)));
}

function lro(command: Command): Command {
  return command
    .option('--no-wait', 'Do not wait for the operation to finish; print it.')
    .option('--timeout <duration>', 'Longest time to wait for the operation.', '20m0s');
}

const withJson = (command: Command) =>
  command.option(
    '--json <json>',
    'Request body (the resource, e.g. {"spec": {...}}) as inline JSON or @file.',
  );

/** The list verbs page through `next_page_token`, up to `--limit` items. */
async function listAll(
  creds: Credentials,
  path: string,
  key: string,
  options: Record<string, unknown>,
  query: Record<string, string | undefined> = {},
) {
  const items: unknown[] = [];
  const limit = options.limit === undefined ? Number.POSITIVE_INFINITY : Number(options.limit);
  let token: string | undefined;
  do {
    const page = await call<Record<string, unknown>>(creds, 'GET', path, {
      query: { ...query, page_size: options.pageSize as string | undefined, page_token: token },
    });
    items.push(...((page[key] as unknown[]) ?? []));
    token = page.next_page_token as string | undefined;
  } while (token && items.length < limit);
  printJson(items.slice(0, limit));
}

const listFlags = (command: Command) =>
  command
    .option('--page-size <n>', 'Items per request.')
    .option('--limit <n>', 'At most this many items in all.');

/** `pier postgres …`: the verbs, arguments and flags of `databricks postgres …` (Lakebase Autoscaling). */
export function registerPostgresCommands(program: Command): void {
  const pg = program
    .command('postgres')
    .description('Lakebase Autoscaling: projects, branches, endpoints, databases, roles.');

  const create = (
    verb: string,
    args: string,
    description: string,
    path: (a: string[]) => string,
    idQuery: (a: string[], o: VerbOptions) => Record<string, string | undefined>,
  ) =>
    lro(withJson(pg.command(`${verb} ${args}`).description(description)))
      .option('--replace-existing', 'Update in place if it exists.')
      .action(async (...all: unknown[]) => {
        const command = all[all.length - 1] as Command;
        const options = all[all.length - 2] as VerbOptions;
        const positional = all.slice(0, -2) as string[];
        await runOperation(credentials(command), options, 'POST', `${BASE}/${path(positional)}`, {
          query: {
            ...idQuery(positional, options),
            ...(options.replaceExisting ? { replace_existing: true } : {}),
          },
          body: parseJsonFlag(options.json),
        });
      });

  create(
    'create-project',
    '<PROJECT_ID>',
    'Create a project (with its production branch, primary endpoint, database and your role).',
    () => 'projects',
    ([id]) => ({ project_id: id }),
  );
  create(
    'create-branch',
    '<PARENT> <BRANCH_ID>',
    'Create a branch of a project (PARENT: projects/<p>) from its default branch or spec.source_branch.',
    ([parent]) => `${resource(parent)}/branches`,
    ([, id]) => ({ branch_id: id }),
  );
  create(
    'create-endpoint',
    '<PARENT> <ENDPOINT_ID>',
    'Create an endpoint on a branch (PARENT: projects/<p>/branches/<b>).',
    ([parent]) => `${resource(parent)}/endpoints`,
    ([, id]) => ({ endpoint_id: id }),
  );
  lro(withJson(pg.command('create-database <PARENT>').description('Create a database on a branch.')))
    .option('--database-id <id>', 'The database id (default: from spec.postgres_database).')
    .option('--replace-existing', 'Update in place if it exists.')
    .action(async (parent: string, options: VerbOptions, command: Command) => {
      await runOperation(credentials(command), options, 'POST', `${BASE}/${resource(parent)}/databases`, {
        query: {
          database_id: options.databaseId as string | undefined,
          ...(options.replaceExisting ? { replace_existing: true } : {}),
        },
        body: parseJsonFlag(options.json),
      });
    });
  lro(withJson(pg.command('create-role <PARENT>').description('Create a Postgres role on a branch.')))
    .option('--role-id <id>', 'The role id (default: from spec.postgres_role).')
    .option('--replace-existing', 'Update in place if it exists.')
    .action(async (parent: string, options: VerbOptions, command: Command) => {
      const body = parseJsonFlag(options.json);
      if ('role' in body)
        throw new PierError(
          'INVALID_PARAMETER_VALUE',
          '--json is the Role itself ({"spec": {...}}), not {"role": {...}}.',
        );
      await runOperation(credentials(command), options, 'POST', `${BASE}/${resource(parent)}/roles`, {
        query: {
          role_id: options.roleId as string | undefined,
          ...(options.replaceExisting ? { replace_existing: true } : {}),
        },
        body,
      });
    });

  for (const kind of ['project', 'branch', 'endpoint', 'database', 'role']) {
    pg.command(`get-${kind} <NAME>`)
      .description(`Get a ${kind} by its full name.`)
      .action(async (name: string, _options: unknown, command: Command) => {
        printJson(await call(credentials(command), 'GET', `${BASE}/${resource(name)}`));
      });
    withJson(
      lro(
        pg
          .command(`update-${kind} <NAME> <UPDATE_MASK>`)
          .description(
            `Update a ${kind}: UPDATE_MASK names the fields (e.g. spec.display_name), --json carries them.`,
          ),
      ),
    ).action(async (name: string, mask: string, options: VerbOptions, command: Command) => {
      await runOperation(credentials(command), options, 'PATCH', `${BASE}/${resource(name)}`, {
        query: { update_mask: mask },
        body: parseJsonFlag(options.json),
      });
    });
    const remove = lro(pg.command(`delete-${kind} <NAME>`).description(`Delete a ${kind}.`));
    if (kind === 'project' || kind === 'branch') remove.option('--purge', 'Delete now, not softly.');
    if (kind === 'role')
      remove.option('--reassign-owned-to <role>', 'The role that takes over what this one owns.');
    remove.action(async (name: string, options: VerbOptions, command: Command) => {
      await runOperation(credentials(command), options, 'DELETE', `${BASE}/${resource(name)}`, {
        query: {
          ...(options.purge ? { purge: true } : {}),
          ...(options.reassignOwnedTo ? { reassign_owned_to: options.reassignOwnedTo as string } : {}),
        },
      });
    });
  }
  for (const kind of ['project', 'branch']) {
    lro(pg.command(`undelete-${kind} <NAME>`).description(`Bring back a soft-deleted ${kind}.`)).action(
      async (name: string, options: VerbOptions, command: Command) => {
        await runOperation(credentials(command), options, 'POST', `${BASE}/${resource(name)}/undelete`, {
          body: {},
        });
      },
    );
  }

  listFlags(pg.command('list-projects').description('List projects.'))
    .option('--show-deleted', 'Include soft-deleted projects.')
    .action(async (options: Record<string, unknown>, command: Command) => {
      await listAll(
        credentials(command),
        `${BASE}/projects`,
        'projects',
        options,
        options.showDeleted ? { show_deleted: 'true' } : {},
      );
    });
  for (const [verb, key] of [
    ['list-branches', 'branches'],
    ['list-endpoints', 'endpoints'],
    ['list-databases', 'databases'],
    ['list-roles', 'roles'],
  ] as const) {
    const command = listFlags(pg.command(`${verb} <PARENT>`).description(`List ${key} of PARENT.`));
    if (verb === 'list-branches') command.option('--show-deleted', 'Include soft-deleted branches.');
    command.action(async (parent: string, options: Record<string, unknown>, cmd: Command) => {
      const query: Record<string, string | undefined> = options.showDeleted ? { show_deleted: 'true' } : {};
      await listAll(credentials(cmd), `${BASE}/${resource(parent)}/${key}`, key, options, query);
    });
  }

  withJson(
    pg
      .command('generate-database-credential [ENDPOINT]')
      .description('A short-lived Postgres password for ENDPOINT (projects/<p>/branches/<b>/endpoints/<e>).'),
  )
    .option('--ttl <duration>', 'Lifetime, e.g. 900s (300s-3600s).')
    .option('--expire-time <time>', 'When it expires (RFC 3339), 5 minutes to an hour from now.')
    .action(async (endpoint: string | undefined, options: VerbOptions, command: Command) => {
      const body = parseJsonFlag(options.json);
      if (endpoint) body.endpoint = resource(endpoint);
      if (options.ttl) body.ttl = `${parseDuration(String(options.ttl)) / 1000}s`;
      if (options.expireTime) body.expire_time = options.expireTime;
      printJson(await call(credentials(command), 'POST', `${BASE}/credentials`, { body }));
    });

  pg.command('get-operation <NAME>')
    .description('Get a long-running operation by its name.')
    .action(async (name: string, _options: unknown, command: Command) => {
      printJson(await call(credentials(command), 'GET', `${BASE}/${resource(name)}`));
    });
}

interface PsqlTarget {
  host: string;
  password: string;
  user: string;
  database: string;
}

/** Where the proxy listens: `PGPORT`, else the local Pier's proxy port, else 5432. */
function proxyPort(command: Command): string {
  if (process.env.PGPORT) return process.env.PGPORT;
  const globals = command.optsWithGlobals() as { dataDir?: string };
  try {
    const layout = dataDirLayout(resolveDataDir(globals.dataDir));
    const state = JSON.parse(readFileSync(layout.stateFile, 'utf8')) as {
      proxyPort?: number;
      caCertPath?: string;
    };
    if (state.caCertPath && !process.env.PGSSLROOTCERT) process.env.PGSSLROOTCERT = state.caCertPath;
    return String(state.proxyPort ?? 5432);
  } catch {
    return '5432';
  }
}

async function autoscalingTarget(
  creds: Credentials,
  options: { project: string; branch?: string; endpoint?: string },
): Promise<PsqlTarget> {
  const projectId = options.project.replace(/^projects\//, '');
  let branchName = options.branch
    ? options.branch.includes('/')
      ? options.branch
      : `projects/${projectId}/branches/${options.branch}`
    : undefined;
  if (!branchName) {
    const project = await call<{ status: { default_branch: string } }>(
      creds,
      'GET',
      `${BASE}/projects/${projectId}`,
    );
    branchName = project.status.default_branch;
  }
  let endpointName = options.endpoint
    ? options.endpoint.includes('/')
      ? options.endpoint
      : `${branchName}/endpoints/${options.endpoint}`
    : undefined;
  type Endpoint = { name: string; status: { endpoint_type: string; hosts: { host: string } } };
  let endpoint: Endpoint;
  if (endpointName) endpoint = await call<Endpoint>(creds, 'GET', `${BASE}/${endpointName}`);
  else {
    const { endpoints } = await call<{ endpoints: Endpoint[] }>(
      creds,
      'GET',
      `${BASE}/${branchName}/endpoints`,
    );
    const readWrite =
      endpoints.find((e) => e.status.endpoint_type === 'ENDPOINT_TYPE_READ_WRITE') ?? endpoints[0];
    if (!readWrite)
      throw new PierError(
        'RESOURCE_DOES_NOT_EXIST',
        `${branchName} has no endpoint; create one with pier postgres create-endpoint.`,
      );
    endpoint = readWrite;
    endpointName = endpoint.name;
  }
  const { token } = await call<{ token: string }>(creds, 'POST', `${BASE}/credentials`, {
    body: { endpoint: endpointName },
  });
  const me = await call<{ userName: string }>(creds, 'GET', '/api/2.0/preview/scim/v2/Me');
  return {
    host: endpoint.status.hosts.host,
    password: token,
    user: me.userName,
    database: 'databricks_postgres',
  };
}

async function instanceTarget(creds: Credentials, instance: string): Promise<PsqlTarget> {
  const found = await call<{ read_write_dns: string }>(
    creds,
    'GET',
    `/api/2.0/database/instances/${encodeURIComponent(instance)}`,
  );
  const { token } = await call<{ token: string }>(creds, 'POST', '/api/2.0/database/credentials', {
    body: { instance_names: [instance], request_id: crypto.randomUUID() },
  });
  const me = await call<{ userName: string }>(creds, 'GET', '/api/2.0/preview/scim/v2/Me');
  return { host: found.read_write_dns, password: token, user: me.userName, database: 'databricks_postgres' };
}

/** `pier psql INSTANCE` / `pier psql --project P [--branch B] [--endpoint E] [-- psql args]`, as `databricks psql`. */
export function registerPsqlCommand(program: Command): void {
  program
    .command('psql [INSTANCE] [ARGS...]')
    .description("Open psql on an instance, or on a project's endpoint, with a fresh database credential.")
    .option('--project <id>', 'A Lakebase Autoscaling project.')
    .option('--branch <id>', 'Its branch (default: the default branch).')
    .option('--endpoint <id>', "The branch's endpoint (default: its read-write endpoint).")
    .action(
      async (
        instance: string | undefined,
        args: string[],
        options: { project?: string; branch?: string; endpoint?: string },
        command: Command,
      ) => {
        const creds = credentials(command);
        if (!options.project && !instance) {
          throw new PierError(
            'INVALID_PARAMETER_VALUE',
            'Name an instance (pier psql my-instance) or a project (pier psql --project my-project).',
          );
        }
        const target = options.project
          ? await autoscalingTarget(creds, options as { project: string })
          : await instanceTarget(creds, instance as string);
        const extra = options.project && instance ? [instance, ...args] : args;
        const child = spawn(
          'psql',
          [
            `host=${target.host} port=${proxyPort(command)} dbname=${target.database} user=${target.user} sslmode=${process.env.PGSSLROOTCERT ? 'verify-full' : 'require'}`,
            ...extra,
          ],
          { stdio: 'inherit', env: { ...process.env, PGPASSWORD: target.password } },
        );
        const code = await new Promise<number>((resolve, reject) => {
          child.once('error', (error) =>
            reject(
              new PierError(
                'INVALID_STATE',
                `Cannot run psql: ${error.message}. Install it (apt-get install postgresql-client).`,
              ),
            ),
          );
          child.once('exit', (exitCode) => resolve(exitCode ?? 1));
        });
        if (code !== 0) process.exitCode = code;
      },
    );
}
