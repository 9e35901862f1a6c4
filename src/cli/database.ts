import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Command, Option } from 'commander';
import { PierError } from '../errors.js';
import { ApiError, call } from './api-client.js';
import { type Credentials, resolveCredentials } from './config.js';
import { printJson, progress } from './output.js';

type Instance = { name: string; state?: string } & Record<string, unknown>;

/** `--json` takes inline JSON or `@path/to/file.json`, as in the Databricks CLI. */
export function parseJsonFlag(value: string | undefined): Record<string, unknown> {
  if (value === undefined) return {};
  const text = value.startsWith('@') ? readFileSync(value.slice(1), 'utf8') : value;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('not an object');
    return parsed as Record<string, unknown>;
  } catch (error) {
    throw new PierError(
      'INVALID_PARAMETER_VALUE',
      `--json must be a JSON object or @file: ${(error as Error).message}`,
    );
  }
}

/** Go-style durations as the Databricks CLI takes them: "20m0s", "90s", "1h". */
export function parseDuration(text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new PierError('INVALID_PARAMETER_VALUE', `Invalid duration "${text}"; use e.g. 20m0s, 90s or 1h.`);
  }
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
  return parts.reduce((total, [, n, u]) => total + Number(n) * unit[u as keyof typeof unit], 0);
}

function credentials(command: Command): Credentials {
  const globals = command.optsWithGlobals() as { profile?: string; dataDir?: string };
  return resolveCredentials({ profile: globals.profile, dataDir: globals.dataDir });
}

const path = (name: string) => `/api/2.0/database/instances/${encodeURIComponent(name)}`;

/** Polls until the instance reaches `target`, printing state changes as progress. */
async function waitForState(
  creds: Credentials,
  name: string,
  target: string,
  timeoutMs: number,
): Promise<Instance> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const instance = await call<Instance>(creds, 'GET', path(name));
    if (instance.state !== last) {
      progress(`${name}: ${instance.state}`);
      last = instance.state ?? '';
    }
    if (instance.state === target) return instance;
    if (Date.now() > deadline) {
      throw new PierError(
        'INTERNAL_ERROR',
        `Timed out after ${timeoutMs} ms waiting for ${name} to reach ${target} (state ${instance.state}).`,
      );
    }
    await sleep(100);
  }
}

/** Instance fields given as flags, merged over `--json`. */
function instanceFields(options: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = parseJsonFlag(options.json as string | undefined);
  const map: [string, string][] = [
    ['capacity', 'capacity'],
    ['stopped', 'stopped'],
    ['enablePgNativeLogin', 'enable_pg_native_login'],
    ['enableReadableSecondaries', 'enable_readable_secondaries'],
    ['nodeCount', 'node_count'],
    ['retentionWindowInDays', 'retention_window_in_days'],
    ['usagePolicyId', 'usage_policy_id'],
  ];
  for (const [flag, field] of map) if (options[flag] !== undefined) fields[field] = options[flag];
  return fields;
}

function addInstanceFlags(command: Command): Command {
  return command
    .option('--capacity <sku>', 'The sku of the instance: CU_1, CU_2, CU_4 or CU_8.')
    .option('--enable-pg-native-login', 'Allow Postgres password login for PG_ONLY roles.')
    .option('--enable-readable-secondaries', 'Enable readable secondaries (not supported yet).')
    .addOption(new Option('--node-count <n>', 'Number of nodes (only 1 is supported).').argParser(Number))
    .addOption(new Option('--retention-window-in-days <n>', 'Days of history kept (2-35).').argParser(Number))
    .option('--stopped', 'Whether the instance is stopped.')
    .option('--usage-policy-id <id>', 'The usage policy to associate with the instance.')
    .option('--json <json>', 'Request body as inline JSON or @path/to/file.json.');
}

/** `pier database …`: the Databricks CLI's `database` verbs, plus start/stop. */
export function registerDatabaseCommands(program: Command): void {
  const database = program.command('database').description('Database instances (Lakebase Provisioned).');
  registerAccessCommands(database);

  addInstanceFlags(
    database
      .command('create-database-instance <NAME>')
      .description('Create a database instance; waits until it is AVAILABLE unless --no-wait.'),
  )
    .option('--no-wait', 'Do not wait to reach AVAILABLE state.')
    .option('--timeout <duration>', 'Maximum time to reach AVAILABLE state.', '20m0s')
    .action(async (name: string, options: Record<string, unknown>, command: Command) => {
      const creds = credentials(command);
      const body: Record<string, unknown> = { ...instanceFields(options), name };
      const created = await call<Instance>(creds, 'POST', '/api/2.0/database/instances', { body });
      if (options.wait === false) return printJson(created);
      const target = body.stopped ? 'STOPPED' : 'AVAILABLE';
      printJson(await waitForState(creds, name, target, parseDuration(String(options.timeout))));
    });

  database
    .command('get-database-instance <NAME>')
    .description('Get a database instance.')
    .action(async (name: string, _options: unknown, command: Command) => {
      printJson(await call(credentials(command), 'GET', path(name)));
    });

  database
    .command('list-database-instances')
    .description('List database instances (every page).')
    .addOption(new Option('--page-size <n>', 'Upper bound for items returned per request.').argParser(Number))
    .option('--page-token <token>', 'Start from this page.')
    .action(async (options: { pageSize?: number; pageToken?: string }, command: Command) => {
      const creds = credentials(command);
      const all: unknown[] = [];
      let pageToken = options.pageToken;
      do {
        const page = await call<{ database_instances?: unknown[]; next_page_token?: string }>(
          creds,
          'GET',
          '/api/2.0/database/instances',
          { query: { page_size: options.pageSize, page_token: pageToken } },
        );
        all.push(...(page.database_instances ?? []));
        pageToken = page.next_page_token;
      } while (pageToken);
      printJson(all);
    });

  addInstanceFlags(
    database
      .command('update-database-instance <NAME> <UPDATE_MASK>')
      .description('Update the fields named by UPDATE_MASK (comma-separated, e.g. "capacity").'),
  ).action(async (name: string, updateMask: string, options: Record<string, unknown>, command: Command) => {
    const body = { ...instanceFields(options), name };
    printJson(
      await call(credentials(command), 'PATCH', path(name), { query: { update_mask: updateMask }, body }),
    );
  });

  database
    .command('delete-database-instance <NAME>')
    .description('Delete a database instance and all of its data.')
    .option('--force', 'Also delete descendant instances.')
    .option(
      '--purge',
      'Also remove its WAL archive and base backups at once (without it they are kept for its retention window).',
    )
    .action(async (name: string, options: { force?: boolean; purge?: boolean }, command: Command) => {
      await call(credentials(command), 'DELETE', path(name), {
        query: { force: options.force, purge: options.purge },
      });
    });

  // Pier's own verbs: Databricks has no backups API.
  database
    .command('list-database-instance-backups <NAME>')
    .description(
      "List an instance's base backups and the earliest point a child can be made from (Pier's own).",
    )
    .action(async (name: string, _options: unknown, command: Command) => {
      printJson(await call(credentials(command), 'GET', `${path(name)}/backups`));
    });

  database
    .command('create-database-instance-backup <NAME>')
    .description("Take a base backup of an instance now; returns once it is complete (Pier's own).")
    .action(async (name: string, _options: unknown, command: Command) => {
      printJson(await call(credentials(command), 'POST', `${path(name)}/backups`));
    });

  database
    .command('find-database-instance-by-uid')
    .description('Find a database instance by uid.')
    .option('--uid <uid>', 'UID of the instance.')
    .action(async (options: { uid?: string }, command: Command) => {
      printJson(
        await call(credentials(command), 'GET', '/api/2.0/database/instances:findByUid', {
          query: { uid: options.uid },
        }),
      );
    });

  for (const [verb, stopped, target] of [
    ['start-database-instance', false, 'AVAILABLE'],
    ['stop-database-instance', true, 'STOPPED'],
  ] as const) {
    database
      .command(`${verb} <NAME>`)
      .description(`${stopped ? 'Stop' : 'Start'} a database instance and wait until it is ${target}.`)
      .option('--no-wait', `Do not wait to reach ${target} state.`)
      .option('--timeout <duration>', `Maximum time to reach ${target} state.`, '20m0s')
      .action(async (name: string, options: { wait?: boolean; timeout: string }, command: Command) => {
        const creds = credentials(command);
        const updated = await call<Instance>(creds, 'PATCH', path(name), {
          query: { update_mask: 'stopped' },
          body: { name, stopped },
        });
        if (options.wait === false) return printJson(updated);
        printJson(await waitForState(creds, name, target, parseDuration(options.timeout)));
      });
  }
}

/** `generate-database-credential` and the instance-role verbs. */
function registerAccessCommands(database: Command): void {
  database
    .command('generate-database-credential')
    .description('Generate a short-lived token to log in to instances as yourself (Postgres password).')
    .option('--request-id <id>', 'Idempotency key: the same id returns the same token while it is valid.')
    .option('--instance-names <names...>', 'Instances the token is for (also accepted in --json).')
    .option('--json <json>', 'Request body as inline JSON or @path/to/file.json.')
    .action(
      async (options: { requestId?: string; instanceNames?: string[]; json?: string }, command: Command) => {
        const body = parseJsonFlag(options.json);
        if (options.requestId) body.request_id = options.requestId;
        if (options.instanceNames) body.instance_names = options.instanceNames.flatMap((n) => n.split(','));
        printJson(await call(credentials(command), 'POST', '/api/2.0/database/credentials', { body }));
      },
    );

  const roles = (instance: string) => `${path(instance)}/roles`;
  database
    .command('create-database-instance-role <INSTANCE_NAME>')
    .description('Create a Postgres role in an instance.')
    .option('--name <name>', 'Role name (default: from --json).')
    .option('--identity-type <type>', 'USER, SERVICE_PRINCIPAL, GROUP or PG_ONLY.')
    .option(
      '--membership-role <role>',
      'DATABRICKS_SUPERUSER to make the role a member of databricks_superuser.',
    )
    .option('--json <json>', 'Request body as inline JSON or @path/to/file.json.')
    .action(async (instance: string, options: Record<string, string | undefined>, command: Command) => {
      const body = parseJsonFlag(options.json);
      if (options.name) body.name = options.name;
      if (options.identityType) body.identity_type = options.identityType;
      if (options.membershipRole) body.membership_role = options.membershipRole;
      printJson(await call(credentials(command), 'POST', roles(instance), { body }));
    });
  database
    .command('get-database-instance-role <INSTANCE_NAME> <NAME>')
    .description('Get a role of an instance.')
    .action(async (instance: string, name: string, _o: unknown, command: Command) => {
      printJson(await call(credentials(command), 'GET', `${roles(instance)}/${encodeURIComponent(name)}`));
    });
  database
    .command('list-database-instance-roles <INSTANCE_NAME>')
    .description('List the roles of an instance.')
    .action(async (instance: string, _o: unknown, command: Command) => {
      const page = await call<{ database_instance_roles?: unknown[] }>(
        credentials(command),
        'GET',
        roles(instance),
      );
      printJson(page.database_instance_roles ?? []);
    });
  database
    .command('delete-database-instance-role <INSTANCE_NAME> <NAME>')
    .description('Drop a role from an instance.')
    .option('--allow-missing', 'Succeed if the role does not exist.')
    .option('--reassign-owned-to <role>', 'Hand the objects the role owns to this role first.')
    .action(
      async (
        instance: string,
        name: string,
        options: { allowMissing?: boolean; reassignOwnedTo?: string },
        command: Command,
      ) => {
        await call(credentials(command), 'DELETE', `${roles(instance)}/${encodeURIComponent(name)}`, {
          query: { allow_missing: options.allowMissing, reassign_owned_to: options.reassignOwnedTo },
        });
      },
    );
}

/** `pier keys rotate`: Pier's own, for admins. */
export function registerKeyCommands(program: Command): void {
  program
    .command('keys')
    .description('Credential signing keys.')
    .command('rotate')
    .description('Sign new database credentials with a fresh key; credentials already issued keep working.')
    .action(async (_o: unknown, command: Command) => {
      printJson(await call(credentials(command), 'POST', '/api/2.0/pier/signing-keys/rotate'));
    });
}

/** One line for humans: what the API said, with its error code. */
export function describeCliError(error: unknown): string {
  if (error instanceof ApiError) return `Error: ${error.message} (${error.errorCode})`;
  if (error instanceof PierError) return `Error: ${error.message}`;
  return `Error: ${(error as Error)?.message ?? String(error)}`;
}
